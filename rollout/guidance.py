"""Gradient guidance (DPS) with a value model: each guided step adds dt * scale * w(t) * grad_z V(z_t).

With a `StitchedValue` the gradient runs through the backbone's first i blocks, the stitch and the
reward tail only; with a `TweedieValue` (the DPS baseline) it runs through the whole denoiser, the VAE
decoder and the reward, and the step reuses the velocity of that same pass.

Time runs from t = 1 to t = 0, so the ODE step is z <- z - dt u and guidance enters as u - scale w g:
z moves along +grad V and the value rises. Under the SDE the guidance is added to the step outside the
score term (StitchVM eq. 40 with its coefficient replaced by the swept scale).
"""

from dataclasses import dataclass

import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import SamplerConfig, StepHooks, guided_velocity, integrate
from value.value_model import ValueModel

GUIDANCE_SCHEDULES = ("constant", "snr")


def step_set(spec: str, num_steps: int) -> set[int]:
    """Step indices (0-based) named by "a-b" (inclusive), "k", or "" (none); clipped to the schedule."""
    if not spec:
        return set()
    try:
        first, _, last = str(spec).partition("-")
        first, last = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"step window {spec!r} is not 'a-b', 'k' or '' (step indices from 0)") from None
    if not 0 <= first <= last:
        raise ValueError(f"step window {spec!r} must have 0 <= a <= b")
    return set(range(first, min(last, num_steps - 1) + 1))


@dataclass(kw_only=True)
class GuidanceConfig:
    """scale: the swept guidance strength (0 turns guidance off). schedule: "constant" (w = 1) or "snr"
    (w = min(t / (1 - t), max_weight), the t-dependence of the derived coefficient 3t / (1 - t)).
    steps: the guided step indices, "a-b" (0-based, inclusive); "" guides every step."""

    scale: float = 1.0
    schedule: str = "constant"
    max_weight: float = 5.0
    steps: str = ""

    def __post_init__(self):
        if self.schedule not in GUIDANCE_SCHEDULES:
            raise ValueError(f"guidance.schedule={self.schedule!r} is not one of {GUIDANCE_SCHEDULES}")
        if self.scale < 0 or self.max_weight <= 0:
            raise ValueError(f"guidance.scale={self.scale} must be >= 0 and guidance.max_weight={self.max_weight} > 0")
        step_set(self.steps, 1)

    def weight(self, t: float) -> float:
        if self.schedule == "constant":
            return 1.0
        return min(t / max(1.0 - t, 1e-8), self.max_weight)

    def guided_steps(self, num_steps: int) -> set[int]:
        return step_set(self.steps, num_steps) if self.steps else set(range(num_steps))


def velocity_and_gradient(
    model, value: ValueModel, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, null: Conditioning | None,
    cfg_scale: float, prompts: list[str],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u (B, C, h, w), grad_z V(z_t) (B, C, h, w)), both detached.

    Only a value that reads the velocity gets a graph through the denoiser; any other value's velocity is
    a plain no-grad pass, so its gradient never touches the decoder or the backbone's later blocks.
    """
    with torch.enable_grad():
        x = z.detach().requires_grad_(True)
        if value.reads_velocity:
            u = guided_velocity(model, x, t, cond, null, cfg_scale)
        else:
            with torch.no_grad():
                u = guided_velocity(model, z, t, cond, null, cfg_scale)
        (grad,) = torch.autograd.grad(value.from_velocity(x, t, prompts, u).sum(), x)
    return u.detach(), grad


class _ValueGradient(StepHooks):
    """On guided steps: the velocity with grad_z V beside it, and the step moved along it."""

    def __init__(self, value: ValueModel, prompts: list[str], guidance: GuidanceConfig, guided: set[int]):
        self.value, self.prompts, self.guidance, self.guided = value, prompts, guidance, guided
        self.grad = None

    def velocity(self, model, k, z, t_batch, cond, null_cond, config):
        if k not in self.guided:
            self.grad = None
            return super().velocity(model, k, z, t_batch, cond, null_cond, config)
        u, self.grad = velocity_and_gradient(model, self.value, z, t_batch, cond, null_cond, config.cfg_scale, self.prompts)
        return u

    def step(self, k, z, u, t, t_next, generators, config):
        z = super().step(k, z, u, t, t_next, generators, config)
        if self.grad is not None:
            z = z + (t - t_next) * self.guidance.scale * self.guidance.weight(t) * self.grad
        return z


@torch.no_grad()
def dps_sample(
    model, value: ValueModel, z: torch.Tensor, cond: Conditioning, prompts: list[str], *, times: torch.Tensor,
    generators: list[torch.Generator], sampler: SamplerConfig, guidance: GuidanceConfig, null: Conditioning | None = None,
) -> torch.Tensor:
    """Guided sampling from the noise z (B, C, h, w) at times[0] to t = 0; returns the clean latents.

    Row i's SDE noise comes from generators[i]; with guidance.scale = 0 this is plain sampling, draw for draw.
    """
    guided = guidance.guided_steps(len(times) - 1) if guidance.scale > 0 else set()
    hooks = _ValueGradient(value, prompts, guidance, guided)
    return integrate(model, z, cond, times=times, generators=generators, config=sampler, null_cond=null, hooks=hooks).final
