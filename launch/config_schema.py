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
from learner.adjoint_config import AdjointJobConfig
from learner.draft_config import DraftJobConfig
from learner.grpo_config import GRPOJobConfig
from learner.nft_config import NFTJobConfig
from rollout.steering import SteerConfig
from stitching.images import ImageSourceConfig
from stitching.latent_reward import LatentRewardTrainingConfig
from stitching.pipeline import ReportConfig, StitchConfig
from value.latent_reward import LatentRewardConfig
from value.reward_config import RewardConfig
from value.value_config import ValueConfig
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
class PairSourceConfig:
    """Where a latent reward's preference pairs come from.

    path: a pair file (value/preference_pairs.py); empty builds the tiny world's (world/preference_pairs.py):
    `hard_negatives` rendered pairs and the generator's samples for `generated_prompts` training captions,
    `samples_per_prompt` each on `sampler`, ranked by the reward (pairs closer than `margin` dropped).
    eval_path: held-out pairs; empty holds out `eval_fraction` of a given file, or builds the tiny world's
    `eval_pairs` hard negatives on its test digits plus generated pairs for its evaluation prompts.
    """

    path: str = ""
    eval_path: str = ""
    eval_fraction: float = 0.1
    hard_negatives: int = 40000
    generated_prompts: int = 600
    samples_per_prompt: int = 8
    margin: float = 0.02
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=10))
    eval_pairs: int = 1000

    def __post_init__(self):
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"pairs.eval_fraction={self.eval_fraction} must lie in (0, 1)")


@dataclass(kw_only=True)
class LatentRewardJobConfig:
    """launch/latent_reward.py: train a latent reward model on `model`'s first blocks from preference pairs,
    export it, and report its pairwise accuracy beside the pixel `reward`'s and the value `compare`'s."""

    model: ModelConfig = MISSING
    reward: RewardConfig = MISSING
    pairs: PairSourceConfig = field(default_factory=PairSourceConfig)
    latent_reward: LatentRewardConfig = field(default_factory=LatentRewardConfig)
    train: LatentRewardTrainingConfig = field(default_factory=LatentRewardTrainingConfig)
    compare: ValueConfig = field(default_factory=lambda: ValueConfig(kind="tweedie"))
    eval_ts: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.75, 0.9])
    seed: int = 0
    device: str = "auto"
    run_dir: str = "runs/latent_reward"

    def __post_init__(self):
        self.compare.check_path("compare", "the report compares the latent reward")
        if any(not 0.0 <= t < 1.0 for t in self.eval_ts):
            raise ValueError(f"eval_ts={self.eval_ts} must lie in [0, 1)")


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
    cs.store(name="adjoint_schema", node=AdjointJobConfig)
    cs.store(name="steer_schema", node=SteerJobConfig)
    cs.store(name="latent_reward_schema", node=LatentRewardJobConfig)
