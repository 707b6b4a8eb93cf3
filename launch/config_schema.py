"""Typed schemas of the launch scripts' Hydra configs, registered so that a misspelt or unknown key
fails when the config is composed instead of silently becoming a default."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from launch.prompt_file import read_prompt_file
from learner.draft_config import DraftJobConfig
from learner.grpo_config import GRPOJobConfig
from learner.nft_config import NFTJobConfig
from rollout.steering import SteerConfig
from stitching.images import ImageSourceConfig
from stitching.pipeline import ReportConfig, StitchConfig
from value.reward_config import RewardConfig
from world.build import WorldConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


def world_dir() -> Path:
    """Where the tiny world lives: $STITCHRL_WORLD, else artifacts/world in the repository."""
    return Path(os.environ.get("STITCHRL_WORLD", REPO_ROOT / "artifacts" / "world"))


@dataclass(kw_only=True)
class PromptJobConfig:
    """What the jobs that sample images for prompts share.

    prompt_file: one prompt per line; when set it replaces `prompts`. Prompt p's sample i gets seed
    `seed + p * samples_per_prompt + i`. run_dir (in the subclasses): made absolute at start.
    """

    prompts: list[str] = field(
        default_factory=lambda: ["a red one and a magenta eight", "four ones", "a one right of a three", "a cyan one"]
    )
    prompt_file: str = ""
    samples_per_prompt: int = 4
    batch_size: int = 8
    height: int = 32
    width: int = 32
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.samples_per_prompt < 1 or self.batch_size < 1:
            raise ValueError(
                f"samples_per_prompt={self.samples_per_prompt} and batch_size={self.batch_size} must be at least 1"
            )
        if not self.prompts and not self.prompt_file:
            raise ValueError("no prompts: set prompts=[...] or prompt_file=<a file with one prompt per line>")

    def prompt_list(self) -> list[str]:
        return read_prompt_file(self.prompt_file) if self.prompt_file else list(self.prompts)


@dataclass(kw_only=True)
class GenerateJobConfig(PromptJobConfig):
    """launch/generate.py: sample `samples_per_prompt` images for each prompt, score them, write a run dir."""

    # Filled from the config groups (configs/model, configs/reward); no silent default model.
    model: ModelConfig = MISSING
    reward: RewardConfig = MISSING
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    run_dir: str = "runs/generate"


@dataclass(kw_only=True)
class WorldJobConfig:
    """launch/world.py: build the tiny world (or reuse it) and print its gates."""

    world: WorldConfig = field(default_factory=WorldConfig)


@dataclass(kw_only=True)
class StitchJobConfig:
    """launch/stitch.py: build a stitched value model for `model` x `reward`, export it, report on it.

    prompt_file: prompts of the calibration trajectories (one per line); empty uses the tiny world's
    evaluation prompts.
    """

    model: ModelConfig = MISSING
    reward: RewardConfig = MISSING
    images: ImageSourceConfig = field(default_factory=ImageSourceConfig)
    stitch: StitchConfig = field(default_factory=StitchConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    prompt_file: str = ""
    height: int = 32
    width: int = 32
    seed: int = 0
    device: str = "auto"
    run_dir: str = "runs/stitch"

    def __post_init__(self):
        if self.images.kind == "folder" and (self.stitch.prompted or self.stitch.distill.teacher != "clean"):
            raise ValueError(
                f"stitch.prompted={self.stitch.prompted} and stitch.distill.teacher={self.stitch.distill.teacher} read "
                "each image's prompt, and images.kind=folder has none: use images.kind=generator (with "
                "images.path=<prompt file>), or stitch.prompted=false stitch.distill.teacher=clean"
            )


@dataclass(kw_only=True)
class SteerJobConfig(PromptJobConfig):
    """launch/steer.py: steer sampling toward `reward` with a value model, score, write a run dir.

    steer.value: the value the method guides or weighs with (a stitched one must be built for `model` x
    `reward`: python launch/stitch.py). verifier: the tiny world's verifier folder
    ("" skips the GenEval-like score). batch_size: prompts per pass (FK multiplies them by N particles).
    """

    model: ModelConfig = MISSING
    reward: RewardConfig = MISSING
    steer: SteerConfig = field(default_factory=SteerConfig)
    verifier: str = ""
    batch_size: int = 16
    run_dir: str = "runs/steer"

    def __post_init__(self):
        super().__post_init__()
        if self.steer.needs_value:
            self.steer.value.check_path("steer.value", f"steer.method={self.steer.method!r}")


def register_schemas() -> None:
    """The schemas, and the ${world:<component>} and ${repo:<path>} resolvers the presets use for paths."""
    if not OmegaConf.has_resolver("world"):
        OmegaConf.register_new_resolver("world", lambda part="": str(world_dir() / part))
    if not OmegaConf.has_resolver("repo"):
        OmegaConf.register_new_resolver("repo", lambda part="": str(REPO_ROOT / part))
    cs = ConfigStore.instance()
    cs.store(name="generate_schema", node=GenerateJobConfig)
    cs.store(name="world_schema", node=WorldJobConfig)
    cs.store(name="stitch_schema", node=StitchJobConfig)
    cs.store(name="nft_schema", node=NFTJobConfig)
    cs.store(name="grpo_schema", node=GRPOJobConfig)
    cs.store(name="draft_schema", node=DraftJobConfig)
    cs.store(name="steer_schema", node=SteerJobConfig)
