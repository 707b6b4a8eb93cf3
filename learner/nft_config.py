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
        if self.train.group_size < 2:  # before the batch's divisibility, which a group of 1 can also break
            raise ValueError(f"train.group_size={self.train.group_size}: a DiffusionNFT group needs at least 2 images to compare")
        super().__post_init__()
