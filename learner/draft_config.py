"""The DRaFT job's configuration (`configs/draft.yaml` mirrors it)."""

from dataclasses import dataclass, field

from learner.draft_objective import DraftConfig
from learner.job_config import JobConfig


@dataclass(kw_only=True)
class DraftJobConfig(JobConfig):
    """launch/draft.py: the learners sample with gradients (draft.sampler, draft.horizon); the rollout
    workers only evaluate, so rollout.horizon stays "full" (set draft.horizon instead)."""

    draft: DraftConfig = field(default_factory=DraftConfig)
    run_dir: str = "runs/draft"

    def __post_init__(self):
        super().__post_init__()
        if self.rollout.stop_window is not None:
            raise ValueError(
                f"rollout.horizon={self.rollout.horizon!r}: DRaFT samples its training rollouts on the learners; "
                "set draft.horizon (rollout.* only sizes the evaluation workers)"
            )
        if self.train.max_staleness:
            raise ValueError(
                f"train.max_staleness={self.train.max_staleness}: DRaFT samples inside the learner step with the current "
                "weights, so nothing is sampled ahead; leave it at 0"
            )
        if self.draft.stop_window is not None and len(self.rewards) != 1:
            raise ValueError(f"draft.horizon={self.draft.horizon!r} maximises one value: give one reward term, not {sorted(self.rewards)}")

    def value_paths(self) -> dict[str, str]:
        stitched = self.draft.stop_window is not None and self.draft.value.kind == "stitched"
        return super().value_paths() | ({"draft.value.path": self.draft.value.path} if stitched else {})
