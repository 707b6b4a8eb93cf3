"""The values StitchVM is compared with, behind the same interface, built from the base model and the
pixel reward alone (nothing trained):

- `TweedieValue`: one denoiser pass, z0_hat = z_t - t u(z_t), decode, reward. Its gradient runs through
  the whole denoiser, the VAE decoder and the reward tower.
- `MonteCarloValue`: K rollouts from z_t to t = 0 with the base model's sampler, decode, reward, mean.
  With the posterior SDE (the default) the rollouts draw x0 from p(x0 | z_t), so K -> infinity is the
  true value; K = 1 is the cheap noisy estimate.

Both run the base model under each sample's prompt, or with `prompted=False` under the null prompt
while the reward still scores each sample against its own: the value under the posterior that a reader
of null-prompt features (the stitched value) can model, since the prompt reaches it only at the reward.
"""

import torch

from diffusion.flow_model import FlowModel
from diffusion.sampling import POSTERIOR_SDE_NOISE, SamplerConfig, guided_velocity, rollout_from
from value.reward_model import RewardModel
from value.value_model import ValueModel


class _FromBaseModel(ValueModel):
    def __init__(self, model: FlowModel, reward: RewardModel, *, cfg_scale: float = 1.0, prompted: bool = True):
        super().__init__()
        # Not submodules: both are shared with the rest of the job and stay frozen.
        self.__dict__["model"] = model
        self.__dict__["reward"] = reward
        # Unprompted, CFG would blend the null prompt's velocity with itself: one plain pass is the same.
        self.cfg_scale, self.prompted = (cfg_scale if prompted else 1.0), prompted

    def _conditions(self, prompts: list[str]):
        """The base model's conditioning (the null prompt when unprompted) and CFG's null branch (None
        without CFG)."""
        if not self.prompted:
            return self.model.encode_prompt([""] * len(prompts)), None
        return self.model.conditions(prompts, self.cfg_scale)


class TweedieValue(_FromBaseModel):
    """r(D(z_t - t u(z_t))) with the sampler's guided velocity (cfg_scale as the rollouts use)."""

    reads_velocity = True

    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.reward(self.estimate(z, t, prompts), prompts)

    def estimate(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """The decoded one-step estimate D(z_t - t u(z_t)) that the reward scores: (B, 3, H, W)."""
        cond, null = self._conditions(prompts)
        return self._decoded(z, t, guided_velocity(self.model, z, t, cond, null, self.cfg_scale))

    def from_velocity(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str], u: torch.Tensor) -> torch.Tensor:
        """The value given the velocity u(z_t) a sampler already computed (its own step's, so guidance and
        FK potentials cost no second denoiser pass); differentiable through u if u carries a graph."""
        return self.reward(self._decoded(z, t, u), prompts)

    def _decoded(self, z: torch.Tensor, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z - t.view(-1, 1, 1, 1).to(z.dtype) * u)


class MonteCarloValue(_FromBaseModel):
    """Mean reward of `rollouts` continuations of each z_t to t = 0 (no gradient).

    Every z_t must sit on the model's `num_steps` schedule (the t of a trajectory's latents); rollout k
    of sample b draws its noise from seed `seed + k * B + b`.
    """

    def __init__(
        self, model: FlowModel, reward: RewardModel, *, rollouts: int, num_steps: int, cfg_scale: float = 1.0,
        sde_noise: float = POSTERIOR_SDE_NOISE, seed: int = 0, prompted: bool = True,
    ):
        super().__init__(model, reward, cfg_scale=cfg_scale, prompted=prompted)
        if rollouts < 1:
            raise ValueError(f"rollouts={rollouts} must be at least 1")
        self.rollouts, self.seed = rollouts, seed
        self.sampler = SamplerConfig(num_steps=num_steps, cfg_scale=self.cfg_scale, sde_noise=sde_noise)

    @torch.no_grad()
    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.samples(z, t, prompts).mean(0)

    @torch.no_grad()
    def samples(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """(rollouts, B) rewards of the individual continuations."""
        B = z.shape[0]
        times = self.model.schedule(self.sampler.num_steps, *z.shape[-2:]).to(z.device)
        starts = [self._step_index(times, x) for x in t.tolist()]
        cond, null = self._conditions(prompts)
        out = torch.empty(self.rollouts, B)
        for start in sorted(set(starts)):
            rows = [b for b in range(B) if starts[b] == start]
            sub = [prompts[b] for b in rows]
            for k in range(self.rollouts):
                trajectory = rollout_from(
                    self.model, z[rows], cond.index(rows), times=times, start=start,
                    seeds=[self.seed + k * B + b for b in rows], config=self.sampler,
                    null_cond=None if null is None else null.index(rows),
                )
                out[k, rows] = self.reward(self.model.decode(trajectory.final), sub).float().cpu()
        return out

    @staticmethod
    def _step_index(times: torch.Tensor, t: float) -> int:
        k = int((times - t).abs().argmin())
        if abs(times[k].item() - t) > 1e-4:
            raise ValueError(f"t={t:.4f} is not on the {len(times) - 1}-step schedule; take z_t from a trajectory on it")
        return k
