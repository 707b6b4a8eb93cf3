"""The value-stitcher pipeline, start to end: stage-1 search, the stitched value initialised from its fit,
stage-2 distillation (and the VAE-stitch ablation), export, then the fidelity and calibration reports.
`launch/stitch.py` drives it; every artefact lands in one run directory."""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from diffusion.flow_model import FlowModel  # noqa: E402
from stitching.distill import DistillConfig, distill  # noqa: E402
from stitching.images import ImageBatch  # noqa: E402
from stitching.reports import calibration, trajectory_latents  # noqa: E402
from stitching.search import SearchResult, backbone_taps, latent_taps, search_stitch_point  # noqa: E402
from value.baselines import MonteCarloValue, TweedieValue  # noqa: E402
from value.latent_reward_checkpoint import load_latent_reward  # noqa: E402
from value.reward_model import RewardModel  # noqa: E402
from value.stitched import BackboneFeatures, LatentFeatures, StitchedValue, StitchLayer, save_stitched  # noqa: E402


@dataclass(kw_only=True)
class StitchConfig:
    """max_i: backbone blocks searched (0: all); max_j: reward blocks searched (the paper's j <= 4).
    vae_stitch_steps: distillation steps of the VAE-stitch ablation (0 skips it). caption_file: the
    captions of distillation's score term (one per line; empty: the prompts the images show, launch/stitch.py).
    prompted: the backbone reads each latent's prompt, not the null prompt (`BackboneFeatures`); the
    stage-1 fit that initialises the stitch stays on null-prompt features."""

    max_i: int = 0
    max_j: int = 4
    probe_images: int = 200
    probe_batch: int = 25
    bottleneck: int = 8
    distill: DistillConfig = field(default_factory=DistillConfig)
    vae_stitch_steps: int = 400
    caption_file: str = ""
    prompted: bool = False


@dataclass(kw_only=True)
class ReportConfig:
    """ts: noise levels of the reports. fidelity_scenes: tiny-world test scenes per metric (0 skips).
    calibration_*: base-model trajectories (`per_prompt` seeds of each prompt, prompts cycled) and
    posterior rollouts from each z_t for the Monte Carlo truth (0 latents skips). null_prompt_truth: also
    calibrate against rollouts under the null prompt, each scored with its own prompt, the value a reader
    of null-prompt features can model (as many rollouts again). latent_reward: a latent reward's folder
    (python launch/latent_reward.py, or the released checkpoint) reported as a row beside the stitched
    value in both reports; empty leaves it out."""

    ts: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.75, 0.9])
    fidelity_scenes: int = 300
    calibration_latents: int = 48
    calibration_rollouts: int = 32
    calibration_per_prompt: int = 1
    num_steps: int = 20
    cfg_scale: float = 1.0
    null_prompt_truth: bool = True
    latent_reward: str = ""

    def __post_init__(self):
        if self.calibration_per_prompt < 1:
            raise ValueError(f"report.calibration_per_prompt={self.calibration_per_prompt} must be at least 1")


def spread_prompts(prompts: list[str], n: int, per_prompt: int) -> list[str]:
    """n prompts, each repeated per_prompt times in a row, taken evenly over the list (which may be
    ordered by family) and cycled when it is shorter than n / per_prompt."""
    distinct = -(-n // per_prompt)
    chosen = prompts[:: max(len(prompts) // distinct, 1)]
    return [chosen[(k // per_prompt) % len(chosen)] for k in range(n)]


def probe_batches(source, cfg: StitchConfig):
    """The stage-1 probe set: steps -1, -2, ... of the image source (training uses steps 0, 1, ...)."""
    n_batches = -(-cfg.probe_images // cfg.probe_batch)
    return [source(-1 - k, min(cfg.probe_batch, cfg.probe_images - k * cfg.probe_batch)).images
            for k in range(n_batches)]


def new_value(features, reward: RewardModel, result: SearchResult, bottleneck: int, seed: int) -> StitchedValue:
    torch.manual_seed(seed)  # the residual MLP's first layer is random
    fit = result.best
    stitch = StitchLayer(features.dim, reward.tower.width, reward.tower.grid,
                         num_prefix=reward.tower.num_prefix_tokens, bottleneck=bottleneck, upsample=fit.upsample)
    stitch.init_from_fit(fit.weight, fit.bias, fit.prefix)
    return StitchedValue(features, reward, j=fit.j, stitch=stitch)


def save_search(result: SearchResult, run_dir: Path, name: str) -> None:
    rows = result.table()
    (run_dir / f"{name}.json").write_text(json.dumps({"table": rows, "best": [result.best.i, result.best.j]}, indent=2))
    (run_dir / f"{name}.csv").write_text("i,j,nmse\n" + "".join(f"{r['i']},{r['j']},{r['nmse']:.6g}\n" for r in rows))
    i_max, j_max = max(r["i"] for r in rows), max(r["j"] for r in rows)
    grid = torch.full((j_max, i_max), float("nan"))
    for r in rows:
        grid[r["j"] - 1, r["i"] - 1] = r["nmse"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * i_max, 1.2 + 0.6 * j_max))
    im = ax.imshow(grid.numpy(), cmap="viridis", origin="lower",
                   extent=(0.5, i_max + 0.5, 0.5, j_max + 0.5), aspect="auto")
    ax.set_xlabel("backbone block i")
    ax.set_ylabel("reward block j")
    ax.set_title(f"stage-1 normalised MSE, best (i, j) = ({result.best.i}, {result.best.j})")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(run_dir / f"{name}_heatmap.png", dpi=100)
    plt.close(fig)


def train_value(value: StitchedValue, reward: RewardModel, backbone: FlowModel, source, cfg: DistillConfig,
                captions: list[str], checkpoint_dir: Path, metrics, name: str) -> dict:
    def log(row):
        metrics.write(json.dumps({"value": name, **row}) + "\n")

    one_step = TweedieValue(backbone, reward, cfg_scale=cfg.teacher_cfg_scale).estimate
    with tqdm(total=cfg.steps, desc=f"distil {name}", unit="step", mininterval=5) as bar:
        return distill(value, reward, backbone.encode, lambda step: source(step, cfg.batch), cfg,
                       checkpoint_dir=checkpoint_dir, captions=captions, one_step=one_step, progress=bar, log=log)


def plot_calibration(cal: dict, path: Path, truth: str) -> None:
    ts = list(cal)
    names = [k for k in cal[ts[0]] if isinstance(cal[ts[0]][k], dict)]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in names:
        line = ax.plot([float(t) for t in ts], [cal[t][name]["spearman"] for t in ts], marker="o", label=name)
        if cal[ts[0]][name]["spearman_within"] is not None:
            ax.plot([float(t) for t in ts], [cal[t][name]["spearman_within"] for t in ts], marker="x", ls="--",
                    color=line[0].get_color(), label=f"{name}, within a prompt")
    ax.set_xlabel("t (noise level)")
    ax.set_ylabel(f"Spearman vs {truth}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reports(fid: dict | None, cal: dict | None, cal_null: dict | None, run_dir: Path) -> None:
    if fid:
        ts = [k for k in fid if k != "clean"]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for metric in ("zero_shot_acc", "pairwise_acc"):
            line = ax.plot([float(t) for t in ts], [fid[t][metric] for t in ts], marker="o", label=f"stitched {metric}")
            colour = line[0].get_color()
            ax.plot([float(t) for t in ts], [fid[t]["tweedie"][metric] for t in ts], marker="x", ls=":", color=colour,
                    label=f"Tweedie {metric}")
            ax.axhline(fid["clean"][metric], color=colour, ls="--", label=f"clean {metric}")
        ax.set_xlabel("t (noise level)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(run_dir / "fidelity.png", dpi=100)
        plt.close(fig)
    if cal:
        plot_calibration(cal, run_dir / "calibration.png", "Monte Carlo truth")
    if cal_null:
        plot_calibration(cal_null, run_dir / "calibration_null_prompt.png", "the null-prompt truth")


def run_stitch(backbone: FlowModel, reward: RewardModel, source: Callable[[int, int], ImageBatch], *,
               stitch: StitchConfig, report: ReportConfig, captions: list[str],
               prompts: list[str], fidelity: Callable | None, height: int, width: int, seed: int, run_dir: Path,
               card: dict) -> dict:
    """The whole pipeline; returns the summary (also written to run_dir/summary.json).

    source: the clean images, batch(step, size) (`stitching.images`). captions: the score term's (used
    when stitch.distill.score_weight > 0). prompts: the calibration's. fidelity: the world's report,
    fidelity(value, reward, backbone, ts=, n=, seed=) -> dict, or None where there is none."""
    start = time.perf_counter()
    probe = probe_batches(source, stitch)
    searched = search_stitch_point(*backbone_taps(backbone, stitch.max_i or None), reward, probe, max_j=stitch.max_j, seed=seed)
    save_search(searched, run_dir, "search")
    features = BackboneFeatures(backbone, searched.best.i, prompted=stitch.prompted)
    value = new_value(features, reward, searched, stitch.bottleneck, seed)
    with open(run_dir / "metrics.jsonl", "a") as metrics:
        stats = train_value(value, reward, backbone, source, stitch.distill, captions, run_dir / "checkpoints",
                            metrics, "stitched")
        estimators = {"stitched": value}
        if stitch.vae_stitch_steps:
            latent_fit = search_stitch_point(*latent_taps(backbone), reward, probe, max_j=stitch.max_j, seed=seed)
            vae_value = new_value(LatentFeatures(backbone.latent_channels), reward, latent_fit, stitch.bottleneck, seed)
            vae_cfg = DistillConfig(**{**asdict(stitch.distill), "steps": stitch.vae_stitch_steps})
            train_value(vae_value, reward, backbone, source, vae_cfg, captions, run_dir / "checkpoints_vae_stitch",
                        metrics, "vae_stitch")
            estimators["vae_stitch"] = vae_value
    value_path = run_dir / "value"
    save_stitched(value, value_path, {**card, "search_nmse": searched.best.nmse, "distill": stats,
                                      "resolution": [height, width]})
    if "vae_stitch" in estimators:
        save_stitched(estimators["vae_stitch"], run_dir / "value_vae_stitch", {**card, "resolution": [height, width]})
    value.eval()
    others = {}
    if report.latent_reward:
        others["latent_reward"] = load_latent_reward(report.latent_reward, backbone, setting="report.latent_reward")
        estimators.update(others)
    fid = None
    if report.fidelity_scenes and fidelity is not None:
        fid = fidelity(value, reward, backbone, ts=report.ts, n=report.fidelity_scenes, seed=seed, others=others)
    cal = cal_null = None
    if report.calibration_latents:
        cycled = spread_prompts(prompts, report.calibration_latents, report.calibration_per_prompt)
        latent_shape = backbone.latent_shape(height, width)
        latents, times = trajectory_latents(backbone, cycled, ts=report.ts, num_steps=report.num_steps,
                                            latent_shape=latent_shape, cfg_scale=report.cfg_scale, seed=seed)
        mc = dict(num_steps=report.num_steps, cfg_scale=report.cfg_scale)
        estimators["tweedie"] = TweedieValue(backbone, reward, cfg_scale=report.cfg_scale)
        estimators["tweedie_null"] = TweedieValue(backbone, reward, cfg_scale=report.cfg_scale, prompted=False)
        estimators["mc1"] = MonteCarloValue(backbone, reward, rollouts=1, seed=seed + 1_000_000, **mc)
        truth = MonteCarloValue(backbone, reward, rollouts=report.calibration_rollouts, seed=seed, **mc)
        cal = calibration(estimators, truth, latents, times, cycled)
        if report.null_prompt_truth:
            null_truth = MonteCarloValue(backbone, reward, rollouts=report.calibration_rollouts, seed=seed,
                                         prompted=False, **mc)
            cal_null = calibration(estimators, null_truth, latents, times, cycled)
    plot_reports(fid, cal, cal_null, run_dir)
    summary = {
        "stitch_point": [searched.best.i, searched.best.j],
        "search_mse": searched.best.nmse,
        "fidelity": fid,
        "calibration": cal,
        "calibration_null_prompt": cal_null,
        "distill": stats,
        "value_path": str(value_path),
        "run_dir": str(run_dir),
        "seconds": time.perf_counter() - start,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
