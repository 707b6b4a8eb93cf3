"""Steer sampling toward a reward with a value model at inference time: plain, best-of-N, DPS or FK
steering, the value StitchVM (stitched) or Tweedie; see rollout/steering.py.

    python launch/steer.py                                               # value-DPS on the tiny world, CPU
    python launch/steer.py steer.method=fk steer.fk.particles=4 steer.fk.proposals=2
    python launch/steer.py steer.method=dps steer.value.kind=tweedie steer.guidance.scale=0.4
    python launch/steer.py -m steer.method=plain,best_of_n,dps,fk         # one run directory per method
    python launch/steer.py model=sd35_medium model.path=/data/sd3.5-medium reward=hpsv2 \
        reward.path=/data/HPS_v2.1_compressed.pt steer.value.path=/data/stitchvm-hpsv2 height=1024 width=1024

Writes <run_dir>/{config.yaml, samples.png (a row per prompt), samples.jsonl, summary.json}; the last
line printed is the summary (reward, verifier score, seconds per sample, peak memory) as one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from diffusion.device import resolve_device  # noqa: E402
from diffusion.image_grid import save_grid  # noqa: E402
from diffusion.model_config import build_flow_model  # noqa: E402
from launch.config_schema import SteerJobConfig, register_schemas  # noqa: E402
from launch.peak_memory import PeakMemory  # noqa: E402
from launch.run_dir import start_run_dir  # noqa: E402
from rollout.generation import expand_prompts  # noqa: E402
from rollout.steering import Steerer, SteeredSamples  # noqa: E402
from value.reward_config import build_reward_model  # noqa: E402
from value.value_config import build_value  # noqa: E402

register_schemas()


def build_steerer(cfg: SteerJobConfig, device: torch.device) -> Steerer:
    """The frozen generator and reward, and the value the method needs (None for plain and best-of-N)."""
    model = build_flow_model(cfg.model).to(device).eval().requires_grad_(False)
    reward = build_reward_model(cfg.reward).to(device).eval().requires_grad_(False)
    value = build_value(cfg.steer.value, model, reward, key="steer.value").requires_grad_(False) if cfg.steer.needs_value else None
    return Steerer(model, reward, value, cfg.steer, height=cfg.height, width=cfg.width)


def steer(steerer: Steerer, prompts: list[str], seeds: list[int], batch_size: int) -> tuple[SteeredSamples, PeakMemory]:
    """All samples, `batch_size` prompts at a time, with the peak memory of the whole pass."""
    parts = []
    with PeakMemory(next(steerer.model.parameters()).device) as peak:
        for s in range(0, len(prompts), batch_size):
            parts.append(steerer.sample(prompts[s : s + batch_size], seeds[s : s + batch_size]))
    out = SteeredSamples(
        prompts=[p for x in parts for p in x.prompts], seeds=[s for x in parts for s in x.seeds],
        latents=torch.cat([x.latents for x in parts]), images=torch.cat([x.images for x in parts]),
        rewards=torch.cat([x.rewards for x in parts]), seconds=sum(x.seconds for x in parts),
        value_calls=sum(x.value_calls for x in parts), resamples=sum(x.resamples for x in parts),
    )
    return out, peak


def summarise(cfg: SteerJobConfig, out: SteeredSamples, peak: PeakMemory, verifier_report: dict) -> dict:
    n = len(out.prompts)
    return {
        "method": cfg.steer.method,
        "value": cfg.steer.value.kind if cfg.steer.needs_value else "",
        "num_samples": n,
        "reward_mean": out.rewards.mean().item(),
        **verifier_report,
        "seconds_per_sample": out.seconds / n,
        "value_calls_per_sample": out.value_calls / n,
        "resamples": out.resamples,
        "peak_memory_bytes": peak.bytes,
        "peak_memory_source": peak.source,
    }


def run(cfg: SteerJobConfig, run_dir: Path) -> dict:
    prompts = cfg.prompt_list()
    verifier = None
    if cfg.verifier:
        from world.verifier import load_verifier

        verifier = load_verifier(cfg.verifier, setting="verifier")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    steerer = build_steerer(cfg, device)
    expanded, seeds = expand_prompts(prompts, cfg.samples_per_prompt, cfg.seed)
    out, peak = steer(steerer, expanded, seeds, cfg.batch_size)
    images = out.images.float().cpu()
    correct = verifier.correct(images, expanded).tolist() if verifier else [None] * len(expanded)
    save_grid(images, run_dir / "samples.png", columns=cfg.samples_per_prompt, scale=max(1, 128 // cfg.width), labels=expanded)
    with open(run_dir / "samples.jsonl", "w") as f:
        for prompt, seed, r, ok in zip(expanded, seeds, out.rewards.tolist(), correct, strict=True):
            f.write(json.dumps({"prompt": prompt, "seed": seed, "reward": r, "verifier_correct": ok}) + "\n")
    summary = {"run_dir": str(run_dir), **summarise(cfg, out, peak, verifier.report(images, expanded) if verifier else {})}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


@hydra.main(config_path="../configs", config_name="steer", version_base=None)
def main(raw: DictConfig) -> None:
    cfg: SteerJobConfig = OmegaConf.to_object(raw)
    print(json.dumps(run(cfg, start_run_dir(cfg.run_dir, raw))))


if __name__ == "__main__":
    main()
