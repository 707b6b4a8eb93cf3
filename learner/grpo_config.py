"""The Flow-GRPO job's configuration (`configs/grpo.yaml` mirrors it)."""

from dataclasses import dataclass, field

from diffusion.schedule import stop_window
from learner.grpo_loss import GRPOConfig
from learner.job_config import JobConfig


@dataclass(kw_only=True)
class GRPOJobConfig(JobConfig):
    """launch/grpo.py: rollout workers sample with SDE steps in a window (grpo.window_size, grpo.window_end)
    and record them; the learners replay the window's steps with the clipped-ratio loss. With a partial
    rollout.horizon ("a-b", Flow-GRPO-Fast only) rollouts stop right after the window and rollout.value
    scores them there: no ODE tail, no decode, no pixel reward."""

    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    run_dir: str = "runs/grpo"

    def __post_init__(self):
        if self.train.group_size < 2:
            raise ValueError(f"train.group_size={self.train.group_size}: a GRPO group needs at least 2 images to compare")
        super().__post_init__()
        if self.train.max_staleness:
            raise ValueError(f"train.max_staleness={self.train.max_staleness}: Flow-GRPO samples with the weights it "
                             "trains (on-policy); use 0")
        self.window_ends()  # every window setting checked here, before Ray starts

    def window_ends(self) -> tuple[int, int]:
        """(first, last) step the SDE window may end at (it spans the grpo.window_size steps before); Flow-GRPO
        (window_size 0): the window is steps 0 .. num_steps - 2, ending at num_steps - 1."""
        K, w, g = self.rollout.sampler.num_steps, self.grpo.window_size, self.grpo
        stop = self.rollout.stop_window
        if w == 0:
            if stop is not None:
                raise ValueError(f"rollout.horizon={self.rollout.horizon!r} stops after the SDE window, which needs "
                                 "grpo.window_size > 0 (Flow-GRPO-Fast); Flow-GRPO trains every step: use rollout.horizon=full")
            if K < 2:
                raise ValueError(f"rollout.sampler.num_steps={K}: Flow-GRPO trains every step but the last; use at least 2")
            return K - 1, K - 1
        if stop is not None and g.window_end:
            raise ValueError(f"grpo.window_end={g.window_end!r} and rollout.horizon={self.rollout.horizon!r}: with a value "
                             "stop the window ends where the rollout stops; drop grpo.window_end")
        key = "rollout.horizon" if stop is not None else "grpo.window_end"
        ends = stop or (stop_window(g.window_end, K, key="grpo.window_end") if g.window_end else (w, K // 2))
        if w > K // 2:
            raise ValueError(f"grpo.window_size={w} is longer than the first half of the {K}-step schedule "
                             f"(rollout.sampler.num_steps); use at most {K // 2}")
        if ends[0] < w or ends[1] > K // 2:
            raise ValueError(f"{key} lets the {w}-step SDE window end at steps {ends[0]}..{ends[1]}, outside the first half "
                             f"of the schedule with room for the window: use ends within {w}..{K // 2}")
        return ends
