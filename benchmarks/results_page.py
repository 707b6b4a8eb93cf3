"""Render a benchmark's JSON as a results page's tables (markdown on stdout), so the numbers in docs/results/
are the ones the benchmark wrote, not copied by hand.

    python benchmarks/results_page.py nft_speed runs/bench_nft_speed/<time>/nft_speed.json
    python benchmarks/results_page.py horizons runs/nft_sweep/<time>/horizons.json
    python benchmarks/results_page.py dps <the last line of python benchmarks/dps.py, saved as JSON>
    python benchmarks/results_page.py tilt_sweep runs/bench_tilt_sweep/<time>/tilt_sweep.json
    python benchmarks/results_page.py real_scale <the last line of python benchmarks/real_scale.py, saved as JSON>
    python benchmarks/results_page.py pipeline runs/bench_pipeline/<time>/pipeline.json
    python benchmarks/results_page.py latent_reward runs/latent_reward/<time>/summary.json
    python benchmarks/results_page.py latent_reward_arms runs/bench_latent_reward_arms/<time>/latent_reward_arms.json
"""

import json
import sys
from pathlib import Path


def fmt(v) -> str:
    if v is None:
        return "never"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows])


def nft_speed(result: dict) -> str:
    out = [table(["summary", "value"], [[k, v] for k, v in result.items() if not isinstance(v, (dict, list))])]
    for seed, s in result["seeds"].items():
        out.append(f"\n**Seed {seed}** (targets: verifier {fmt(s['target'])}, eval reward {fmt(s['target_reward'])}; "
                   f"base {fmt(s['base_prompt_acc'])} / {fmt(s['base_reward'])})\n")
        rows = []
        for arm in ("full", "value"):
            split = s[f"step_split_{arm}"]
            rows.append([arm, s[f"final_prompt_acc_{arm}"], s[f"final_reward_{arm}"],
                         s[f"train_seconds_to_target_{arm}"], s[f"train_seconds_to_target_reward_{arm}"],
                         *(split[k] for k in ("rollout", "scoring", "learner", "sync", "other", "step")),
                         s[f"row_times_per_step_{arm}"]])
        out.append(table(["arm", "final verifier", "final reward", "s to verifier target", "s to reward target",
                          "rollout s", "scoring s", "learner s", "sync s", "other s", "step s", "row-times / step"], rows))
        out.append(f"\nspeed-up to target: verifier {fmt(s['speedup_time_to_target'])}, reward "
                   f"{fmt(s['speedup_time_to_target_reward'])}; learner seconds ratio {fmt(s['learner_seconds_ratio'])}; "
                   f"at equal learning {fmt(s['speedup_at_equal_learning'])}")
    return "\n".join(out) + "\n"


def horizons(rows: list[dict]) -> str:
    return table(list(rows[0]), [list(r.values()) for r in rows]) + "\n"


def dps(result: dict) -> str:
    methods = table(["method", "best setting", "reward", "verifier", "seconds / sample", "peak memory (MB)"],
                    [[m, r["setting"], r["reward"], r["prompt_acc"], r["seconds"], r["peak_mem"] / 2**20]
                     for m, r in result["methods"].items()])
    base = f"\n\nplain sampling: reward {fmt(result['reward_base'])}, verifier {fmt(result['prompt_acc_base'])}\n\n"
    return methods + base + steering_sweep(result) + "\n"


def steering_sweep(result: dict) -> str:
    """The rows of a steering sweep (benchmarks/dps.py, benchmarks/tilt_sweep.py): one per setting."""
    return table(["setting", "reward", "verifier", "seconds / sample"],
                 [[k, r["reward"], r["prompt_acc"], r["seconds_per_sample"]] for k, r in result["sweep"].items()]) + "\n"


# The paper's figures beside each pair (stitchvm.md sections 4-5): per-sample time for DPS; GPU-hours of
# whole runs (per-step cost and learning per step together) for NFT and DRaFT; FK at matched reward.
PAPER = {"dps": "3.2x (52.8 -> 16.5 s / sample)", "nft": "2.26x (GPU-h to the plateau)", "nft_full_finetune": "-",
         "draft": "1.3x (GPU-h, DRaFT-1)", "fk": "1.5x (FLUX, N = 8 M = 6 vs N = 14, matched reward)"}


def real_scale(result: dict) -> str:
    """Method / baseline step ratios per resolution (measured, then FLOP-scaled), the components, the check."""
    resolutions = [(r, "measured") for r in result["resolutions"]] + [(r, "scaled") for r in result["predicted_resolutions"]]

    def ratio(pair, r, how):
        v = result[f"{pair}_step_ratio_measured_{r}" if how == "measured" else f"{pair}_step_ratio_{r}"]
        return f"{v:.3f} ({1 / v:.2f}x)"

    head = [f"{result['device']}, {result['dtype']}, torch {result['torch']}; median of {result['repeats']} after a warm-up; "
            f"{result['wall_seconds'] / 60:.1f} min\n"]
    head.append(table(["pair (method / baseline)", *[f"{r} px ({how})" for r, how in resolutions], "paper"],
                      [[pair, *[ratio(pair, r, how) for r, how in resolutions], PAPER[pair]] for pair in PAPER]))
    names = list(result["components"][str(resolutions[0][0])])
    head.append("\n**Components** (seconds per sample; CFG: both branches)\n")
    head.append(table(["component", *[f"{r} px ({how})" for r, how in resolutions]],
                      [[n, *[result["components"][str(r)][n] for r, _ in resolutions]] for n in names]))
    for pair in ("dps", "nft"):
        arms = result["splits"][str(resolutions[0][0])][pair]
        phases = list(next(iter(arms.values())))
        head.append(f"\n**{pair.upper()} split** (seconds per {'step' if pair == 'dps' else 'image'} by phase)\n")
        head.append(table(["arm", "resolution", *phases, "total"],
                          [[arm, f"{r} px ({how})", *[split[p] for p in phases], sum(split.values())]
                           for arm in arms for r, how in resolutions for split in [result["splits"][str(r)][pair][arm]]]))
    mem = result["dps_memory_bytes"]
    head.append("\n**DPS peak memory** (GB: parameters held + saved for the backward)\n")
    head.append(table(["resolution", "value-DPS", "Tweedie-DPS", "ratio"],
                      [[f"{r} px", m["value"] / 1e9, m["tweedie"] / 1e9, m["value"] / m["tweedie"]] for r, m in mem.items()]))
    check = result["check"]
    head.append(f"\n**Composition check** ({check['resolution']} px, one guided step through `dps_sample`): " + "; ".join(
        f"{k}-DPS measured {check[k]['seconds']:.3f} s, composed {check[k]['composed_seconds']:.3f} s "
        f"({100 * check[k]['relative_error']:+.1f}%)" for k in ("value", "tweedie")))
    return "\n".join(head) + "\n"


def pipeline(result: dict) -> str:
    """Synchronous vs overlapped NFT: the summary, then per seed both arms side by side."""
    out = [table(["summary", "value"], [[k, v] for k, v in result.items() if not isinstance(v, (dict, list))])]
    keys = ("final_prompt_acc", "final_reward", "step_seconds", "rollout_seconds", "learner_seconds", "sync_seconds",
            "step_over_bound", "overhead_share", "driver_bytes_per_step", "batch_bytes_per_step", "seconds_to_first_update")
    for seed, s in result["seeds"].items():
        out.append(f"\n**Seed {seed}** (target: the synchronous arm's final verifier score {fmt(s['target'])}; training "
                   f"seconds to it: sync {fmt(s['train_seconds_to_target_sync'])}, async "
                   f"{fmt(s['train_seconds_to_target_async'])})\n")
        out.append(table(["metric", "sync (max_staleness=0)", "async (max_staleness=1)"],
                         [[k, s[f"{k}_sync"], s[f"{k}_async"]] for k in keys]
                         + [["staleness: steps", s["staleness_histogram_sync"], s["staleness_histogram_async"]]]))
    return "\n".join(out) + "\n"


def one_machine(result: dict) -> str:
    """In-process vs Ray on one machine: the summary, then both arms side by side."""
    out = [table(["summary", "value"], [[k, v] for k, v in result.items() if not isinstance(v, (dict, list))])]
    arms = result["arms"]
    out.append("\n" + table(["metric", "in process (cluster=in_process)", "Ray (2 workers, 2 learners)"],
                            [[k, arms["in_process"][k], arms["ray"][k]] for k in arms["in_process"]]))
    return "\n".join(out) + "\n"


def grpo_speed(result: dict) -> str:
    """Flow-GRPO-Fast full vs value stop (and NFT): the summary, then per seed the arms side by side."""
    out = [table(["summary", "value"], [[k, v] for k, v in result.items() if not isinstance(v, (dict, list))])]
    arms = ("fast_full", "fast_value", "nft_full")
    for seed, s in result["seeds"].items():
        out.append(f"\n**Seed {seed}** (target: Flow-GRPO-Fast's final verifier score with full rollouts, {fmt(s['target'])}; "
                   f"training seconds to it: full {fmt(s['train_seconds_to_target_full'])}, value stop "
                   f"{fmt(s['train_seconds_to_target_value'])}, NFT {fmt(s['train_seconds_to_target_nft'])})\n")
        rows = [["final_prompt_acc", *(s[f"final_prompt_acc_{a}"] for a in arms)],
                ["final_reward", *(s[f"final_reward_{a}"] for a in arms)]]
        rows += [[f"seconds/step: {phase}", *(s[f"step_split_{a}"][phase] for a in arms)] for phase in s["step_split_fast_full"]]
        out.append(table(["metric", "Fast, full rollouts", "Fast, value stop", "DiffusionNFT, full"], rows))
    return "\n".join(out) + "\n"


def latent_reward(summary: dict) -> str:
    """launch/latent_reward.py's summary: the headline numbers, then per held-out set each scorer's pairwise
    accuracy by noise level."""
    out = [table(["summary", "value"], [[k, v] for k, v in summary.items() if not isinstance(v, (dict, list))])]
    names = {"latent_reward": "latent reward", "compare": "stitched value", "tweedie": "Tweedie (one step, decode, pixel reward)"}
    for held_out, report in summary["held_out"].items():
        out.append(f"\n**{held_out}** ({report['pairs']} pairs; the pixel reward on the clean decoded pairs: "
                   f"{fmt(report['pixel_reward_clean'])})\n")
        out.append(table(["t", *names.values()], [[t, *(row[k] for k in names)] for t, row in report["by_t"].items()]))
        if "by_family" in report:
            ts = [k for k in next(iter(report["by_family"].values())) if k not in ("pairs", "pixel_reward_clean")]
            header = ["family", "pairs", "pixel reward, clean", *(f"{n} at t={t}" for t in ts for n in ("latent", "stitched"))]
            rows = [[f, r["pairs"], r["pixel_reward_clean"], *(r[t][k] for t in ts for k in ("latent_reward", "compare"))]
                    for f, r in report["by_family"].items()]
            out.append("\nBy caption family:\n\n" + table(header, rows))
    return "\n".join(out) + "\n"


def latent_reward_arms(result: dict) -> str:
    """Each arm's final scores and training seconds to the full NFT arm's final verifier score."""
    out = [table(["summary", "value"], [[k, v] for k, v in result.items() if not isinstance(v, (dict, list))])]
    keys = ("final_prompt_acc", "final_reward", "train_seconds_to_target", "train_seconds", "step_seconds", "steps")
    out.append("\n" + table(["arm", *keys], [[name, *(a[k] for k in keys)] for name, a in result["arms"].items()]))
    return "\n".join(out) + "\n"


def common_reward_times(a: list, b: list) -> tuple[float, float, float]:
    """For two evaluation curves [(training seconds, eval reward, ...)]: the highest reward both reach, and the
    seconds at which each first reaches it."""
    common = min(max(r for _, r, *_ in a), max(r for _, r, *_ in b))
    first = lambda curve: next(t for t, r, *_ in curve if r >= common)  # noqa: E731
    return common, first(a), first(b)


def adjoint_speed(result: dict) -> str:
    """AM vs EAM (and the DRaFT rows): the summary, then per seed every arm's final scores, step cost and
    training seconds to AM's final eval reward, and the evaluation curves."""
    out = [table(["summary", "value"], [[k, v] for k, v in result.items() if not isinstance(v, (dict, list))])]
    keys = ("final_reward", "final_reward_se", "final_prompt_acc", "final_prompt_acc_se", "step_seconds", "train_seconds",
            "train_seconds_to_target")
    for seed, s in result["seeds"].items():
        common, t_am, t_eam = common_reward_times(s["arms"]["am"]["curve"], s["arms"]["eam"]["curve"])
        out.append(f"\n**Seed {seed}** (target: AM's final eval reward, {fmt(s['target'])}; speed-up to it, AM's training "
                   f"seconds over EAM's: {fmt(s['speedup_time_to_target'])}. The highest eval reward both reach, "
                   f"{fmt(common)}: AM at {fmt(t_am)} s, EAM at {fmt(t_eam)} s, a speed-up of {fmt(t_am / t_eam)})\n")
        out.append(table(["arm", *keys], [[name, *(a[k] for k in keys)] for name, a in s["arms"].items()]))
        out.append("\nEvaluations (training seconds, eval reward, verifier score):\n")
        out.append(table(["arm", "curve"], [[name, "; ".join(f"{fmt(t)} s: {fmt(r)}, {fmt(a)}" for t, r, a in a_["curve"])]
                                           for name, a_ in s["arms"].items()]))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    kinds = {"nft_speed": nft_speed, "horizons": horizons, "dps": dps, "tilt_sweep": steering_sweep, "real_scale": real_scale,
             "pipeline": pipeline, "one_machine": one_machine, "grpo_speed": grpo_speed, "latent_reward": latent_reward,
             "latent_reward_arms": latent_reward_arms, "adjoint_speed": adjoint_speed}
    if len(sys.argv) != 3 or sys.argv[1] not in kinds:
        sys.exit(f"usage: python benchmarks/results_page.py {{{'|'.join(kinds)}}} <json>")
    print(kinds[sys.argv[1]](json.loads(Path(sys.argv[2]).read_text())))
