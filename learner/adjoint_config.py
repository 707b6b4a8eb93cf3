"""The adjoint job's configuration (`configs/adjoint.yaml` mirrors it)."""

from dataclasses import dataclass, field

from learner.adjoint_objective import AdjointConfig
from learner.job_config import JobConfig


@dataclass(kw_only=True)
class AdjointJobConfig(JobConfig):
    """launch/adjoint.py: the learners sample with the current weights (adjoint.method's rollout) and regress;
    the rollout workers only evaluate, so rollout.horizon stays "full"."""

    adjoint: AdjointConfig = field(default_factory=AdjointConfig)
    run_dir: str = "runs/adjoint"

    def __post_init__(self):
        super().__post_init__()
        if self.rollout.stop_window is not None:
            raise ValueError(f"rollout.horizon={self.rollout.horizon!r}: AM and EAM sample their training rollouts on the "
                             "learners and read the reward at the clean endpoint; rollout.* only sizes the evaluation workers")
        if self.train.max_staleness:
            raise ValueError(f"train.max_staleness={self.train.max_staleness}: AM and EAM sample inside the learner step "
                             "with the current weights, so nothing is sampled ahead; leave it at 0")
