"""The DiffusionNFT job's configuration (`configs/nft.yaml` mirrors it)."""

from dataclasses import dataclass, field

from learner.job_config import JobConfig
from learner.nft_loss import NFTLossConfig


@dataclass(kw_only=True)
class NFTJobConfig(JobConfig):
    """launch/nft.py: rollout workers sample (rollout.sampler, rollout.horizon), the learners regress."""

    nft: NFTLossConfig = field(default_factory=NFTLossConfig)
    run_dir: str = "runs/nft"

    def __post_init__(self):
        super().__post_init__()
        if self.train.group_size < 2:
            raise ValueError(f"train.group_size={self.train.group_size}: a DiffusionNFT group needs at least 2 images to compare")
        window = self.rollout.stop_window
        if window is not None and len(self.rewards) != 1:
            raise ValueError(f"rollout.horizon={self.rollout.horizon!r} scores with one value: give one reward term, not {sorted(self.rewards)}")
        if window is not None and window[0] < self.learner.train_timesteps:
            raise ValueError(
                f"rollout.horizon={self.rollout.horizon!r}: a stop after step {window[0]} leaves {window[0]} training times above "
                f"it, fewer than learner.train_timesteps={self.learner.train_timesteps}"
            )

    def weight_paths(self) -> dict[str, str]:
        paths = super().weight_paths()
        if self.rollout.stop_window is not None and self.rollout.value == "stitched":
            paths["rollout.value_path"] = self.rollout.value_path
        return paths
