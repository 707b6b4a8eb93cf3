"""The results pages' tables come from the benchmarks' JSON: the committed steering, real-scale and pipeline
pages re-render to the tables they hold."""

import json
from pathlib import Path

from tests.benchmarks import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


def _module():
    return load_benchmark("results_page")


def test_the_committed_pages_hold_what_their_json_renders_to():
    page = _module()
    for kind, render, name in (("dps", page.dps, "2026-12-07-dps-tilt"),
                               ("tilt_sweep", page.steering_sweep, "2026-12-07-tilt-sweep"),
                               ("real_scale", page.real_scale, "2026-12-07-real-scale"),
                               ("pipeline", page.pipeline, "2026-12-07-pipeline"),
                               ("one_machine", page.one_machine, "2026-12-07-one-machine"),
                               ("grpo_speed", page.grpo_speed, "2026-12-07-grpo-speed"),
                               ("latent_reward", page.latent_reward, "2026-12-07-latent-reward"),
                               ("latent_reward_arms", page.latent_reward_arms, "2026-12-07-latent-reward-arms"),
                               ("adjoint_speed", page.adjoint_speed, "2026-12-08-adjoint-speed"),
                               ("adjoint_speed", page.adjoint_speed, "2026-12-08-adjoint-speed-eam10-draft")):
        rendered = render(json.loads((RESULTS / f"{name}.json").read_text()))
        text = (RESULTS / f"{name.removesuffix('-eam10-draft')}.md").read_text()  # one page holds both adjoint runs
        for line in rendered.strip().splitlines():
            assert line in text, f"{name}.md lacks {line!r}: regenerate it with benchmarks/results_page.py {kind}"


def test_a_sweep_row_shows_reward_verifier_and_seconds():
    row = {"reward": 0.5, "prompt_acc": 0.25, "seconds_per_sample": 0.125}
    assert "| tilt@0.01/all | 0.500 | 0.250 | 0.125 |" in _module().steering_sweep({"sweep": {"tilt@0.01/all": row}})
