"""What the steering benchmarks share: launch/steer.py's config (configs/steer.yaml plus overrides) and
one evaluated pass over prompts (mean reward, verifier score, seconds per sample)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from diffusion.device import resolve_device  # noqa: E402
from launch.config_schema import REPO_ROOT, SteerJobConfig, register_schemas  # noqa: E402
from launch.steer import build_steerer, steer  # noqa: E402
from rollout.steering import Steerer  # noqa: E402

register_schemas()


def job_config(overrides: list[str]) -> SteerJobConfig:
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base=None):
        return OmegaConf.to_object(compose("steer", overrides=["run_dir=unused", *overrides]))


def steerer_for(overrides: list[str]) -> tuple[Steerer, SteerJobConfig]:
    cfg = job_config(overrides)
    return build_steerer(cfg, resolve_device(cfg.device)), cfg


def warm_up(steerer: Steerer, prompts: list[str], seeds: list[int]) -> None:
    """One single-prompt pass first: caches and lazily built buffers are not the method's cost."""
    steer(steerer, prompts[:1], seeds[:1], 1)


def evaluate(overrides: list[str], prompts: list[str], seeds: list[int], verifier) -> dict:
    """One pass of launch/steer.py's steering with `overrides`: reward, verifier score, seconds per sample."""
    steerer, cfg = steerer_for(overrides)
    warm_up(steerer, prompts, seeds)
    out, _ = steer(steerer, prompts, seeds, cfg.batch_size)
    return {"reward": out.rewards.mean().item(), "prompt_acc": verifier.report(out.images.cpu(), prompts)["prompt_acc"],
            "seconds_per_sample": out.seconds / len(prompts), "value_calls_per_sample": out.value_calls / len(prompts)}
