"""Typed schemas of the launch scripts' Hydra configs, registered so that a misspelt or unknown key
fails when the config is composed instead of silently becoming a default."""

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from value.reward_config import RewardConfig


@dataclass(kw_only=True)
class GenerateJobConfig:
    """launch/generate.py: sample `samples_per_prompt` images for each prompt, score them, write a run dir.

    prompt_file: one prompt per line; when set it replaces `prompts`. run_dir: made absolute at start.
    """

    # Filled from the config groups (configs/model, configs/reward); no silent default model.
    model: ModelConfig = MISSING
    reward: RewardConfig = MISSING
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    prompts: list[str] = field(default_factory=lambda: ["a red seven", "a blue two and a green five"])
    prompt_file: str = ""
    samples_per_prompt: int = 4
    batch_size: int = 8
    height: int = 32
    width: int = 32
    seed: int = 0
    device: str = "auto"
    run_dir: str = "runs/generate"

    def __post_init__(self):
        if self.samples_per_prompt < 1 or self.batch_size < 1:
            raise ValueError(
                f"samples_per_prompt={self.samples_per_prompt} and batch_size={self.batch_size} must be at least 1"
            )
        if not self.prompts and not self.prompt_file:
            raise ValueError("no prompts: set prompts=[...] or prompt_file=<a file with one prompt per line>")


def register_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="generate_schema", node=GenerateJobConfig)
