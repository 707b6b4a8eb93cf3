"""The horizon-sweep report on hand-written run directories (what launch/nft.py -m and launch/draft.py -m leave behind)."""

import json

import pytest

from launch.horizon_report import report, time_to


def _run(folder, horizon, evals, step_seconds, job="rollout"):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"{job}:\n  horizon: '{horizon}'\n")
    rows = [{"step": s, "wall_seconds": w, "eval/prompt_acc": a, "eval/reward": 0.3, "time/step": step_seconds * (s > 0)}
            for s, w, a in evals]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"base_prompt_acc": evals[0][2], "final_prompt_acc": evals[-1][2], "final_reward": 0.4, "steps": evals[-1][0],
               "wall_seconds": evals[-1][1]}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_time_to_target_is_the_first_evaluation_that_reaches_it():
    rows = [{"wall_seconds": 10, "eval/prompt_acc": 0.1}, {"wall_seconds": 20}, {"wall_seconds": 30, "eval/prompt_acc": 0.25}]
    assert time_to(rows, 0.2) == 30 and time_to(rows, 0.3) is None


@pytest.mark.parametrize("job", ["rollout", "draft"])
def test_report_tabulates_every_horizon_against_the_full_runs_final_score(tmp_path, job):
    # Rows are logged only at evaluations here, each standing for 10 steps of step_seconds.
    _run(tmp_path / "horizon=full", "full", [(0, 5, 0.1), (10, 100, 0.2), (20, 200, 0.3)], step_seconds=40.0, job=job)
    _run(tmp_path / "horizon=5-7", "5-7", [(0, 5, 0.1), (10, 60, 0.3), (20, 120, 0.35)], step_seconds=20.0, job=job)
    table = {row["horizon"]: row for row in report(tmp_path)}
    assert table["full"]["seconds_to_full_final"] == 200 and table["5-7"]["seconds_to_full_final"] == 60
    assert table["5-7"]["seconds_per_step"] == 2.0 and table["full"]["seconds_per_step"] == 4.0
    assert (tmp_path / "horizons.png").is_file() and "| 5-7 |" in (tmp_path / "horizons.md").read_text()


def test_runs_of_one_horizon_with_other_overrides_keep_a_row_each(tmp_path):
    # Folders named by the overrides (`-m rollout.horizon=full,5-7 rollout.value.kind=stitched,tweedie` and the
    # like), one nested by a path among them.
    _run(tmp_path / "rollout.horizon=full", "full", [(0, 5, 0.1), (10, 100, 0.3)], step_seconds=4.0)
    _run(tmp_path / "rollout.horizon=5-7,rollout.value.kind=stitched", "5-7", [(0, 5, 0.1), (10, 50, 0.3)], step_seconds=2.0)
    _run(tmp_path / "rollout.horizon=5-7,rollout.value.kind=tweedie", "5-7", [(0, 5, 0.1), (10, 80, 0.2)], step_seconds=3.0)
    _run(tmp_path / "rollout.horizon=5-7,rollout.value.path=" / "v" / "value", "5-7", [(0, 5, 0.1), (10, 70, 0.4)], step_seconds=3.0)
    table = {row["run"]: row for row in report(tmp_path)}
    assert len(table) == 4 and {row["horizon"] for row in table.values()} == {"full", "5-7"}
    assert table["rollout.horizon=5-7,rollout.value.kind=stitched"]["seconds_to_full_final"] == 50
    assert table["rollout.horizon=5-7,rollout.value.kind=tweedie"]["seconds_to_full_final"] is None
    assert table["rollout.horizon=5-7,rollout.value.path=/v/value"]["seconds_to_full_final"] == 70


def test_full_runs_that_disagree_make_the_target_ambiguous(tmp_path):
    _run(tmp_path / "a", "full", [(0, 5, 0.1), (10, 100, 0.3)], step_seconds=4.0)
    _run(tmp_path / "b", "full", [(0, 5, 0.1), (10, 90, 0.3)], step_seconds=4.0)
    _run(tmp_path / "c", "5-7", [(0, 5, 0.1), (10, 50, 0.3)], step_seconds=2.0)
    assert {row["run"]: row for row in report(tmp_path)}["c"]["seconds_to_full_final"] == 50  # the same final: one target
    _run(tmp_path / "d", "full", [(0, 5, 0.1), (10, 100, 0.2)], step_seconds=4.0)
    with pytest.raises(ValueError, match=r"end at different scores \[0.2, 0.3\]"):
        report(tmp_path)
