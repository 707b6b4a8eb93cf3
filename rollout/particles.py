"""Particle samplers: Feynman-Kac (FK) steering, with value-ranked local proposals (StitchVM Alg. 1), and
best-of-N as its special case with no resampling.

N particles per prompt run the stochastic sampler. At proposal steps each particle draws M candidates
from its transition kernel (one velocity pass, M noise draws) and keeps the one the value ranks highest.
At resampling steps the particles of each prompt are resampled multinomially with FK potentials of the
value (before the step, so a Tweedie value reuses that step's velocity). The sample returned for a prompt
is its particle with the highest final reward, which is how best-of-N picks too.

Rows are prompt-major: row b * N + n is particle n of prompt b.
"""

from dataclasses import dataclass

import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import SamplerConfig, StepHooks, integrate, sampler_step
from rollout.guidance import step_set
from value.reward_model import RewardModel
from value.value_model import ValueModel

POTENTIALS = ("diff", "max", "sum")


@dataclass(kw_only=True)
class FKConfig:
    """particles: N. proposals: M candidates per particle at `proposal_steps` (1: plain FK).
    resample_steps "a-b" with resample_every: resampling happens at steps a, a + every, ... <= b ("" never:
    best-of-N). potential: "diff" exp(lambda (V_k - V_prev)), "max" exp(lambda max_s V_s), "sum"
    exp(lambda sum_s V_s) over the particle's resampling times; temperature: lambda. adaptive: resample a
    prompt's particles only when their effective sample size is below N / 2."""

    particles: int = 4
    proposals: int = 1
    proposal_steps: str = "0-7"
    resample_steps: str = "4-16"
    resample_every: int = 4
    potential: str = "diff"
    temperature: float = 50.0
    adaptive: bool = False

    def __post_init__(self):
        if self.particles < 1 or self.proposals < 1:
            raise ValueError(f"fk.particles={self.particles} and fk.proposals={self.proposals} must be >= 1")
        if self.resample_every < 1:
            raise ValueError(f"fk.resample_every={self.resample_every} must be >= 1")
        if self.potential not in POTENTIALS:
            raise ValueError(f"fk.potential={self.potential!r} is not one of {POTENTIALS}")
        if self.temperature < 0:
            raise ValueError(f"fk.temperature={self.temperature} must be >= 0")
        step_set(self.proposal_steps, 1), step_set(self.resample_steps, 1)

    def resampling(self, num_steps: int) -> set[int]:
        window = sorted(step_set(self.resample_steps, num_steps))
        return set(range(window[0], window[-1] + 1, self.resample_every)) - {0} if window else set()

    def proposing(self, num_steps: int) -> set[int]:
        return step_set(self.proposal_steps, num_steps) if self.proposals > 1 else set()


@dataclass
class ParticleResult:
    """latents (B, C, h, w) clean, images (B, 3, H, W), rewards (B,): each prompt's best particle.
    resamples: how many (prompt, step) resamplings happened; value_calls: latents the value scored."""

    latents: torch.Tensor
    images: torch.Tensor
    rewards: torch.Tensor
    resamples: int
    value_calls: int


def log_potential(values: torch.Tensor, history: torch.Tensor | None, cfg: FKConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(log G (rows,), the new history): history is the last value (diff), the running max or the sum."""
    if cfg.potential == "diff":
        previous = torch.zeros_like(values) if history is None else history
        return cfg.temperature * (values - previous), values
    if cfg.potential == "max":
        running = values if history is None else torch.maximum(history, values)
        return cfg.temperature * running, running
    running = values if history is None else history + values
    return cfg.temperature * running, running


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """(B, N) log weights -> (B,) ESS = 1 / sum w^2 of the normalised weights, in [1, N]."""
    w = torch.softmax(log_weights, dim=-1)
    return 1.0 / (w**2).sum(-1)


def resample(log_weights: torch.Tensor, generators: list[torch.Generator], adaptive: bool) -> torch.Tensor:
    """(B, N) log weights -> (B, N) ancestor indices within each prompt's particles (multinomial, with
    replacement); under `adaptive` a prompt whose ESS is at least N / 2 keeps its particles."""
    B, N = log_weights.shape
    ess = effective_sample_size(log_weights)
    ancestors = torch.arange(N).repeat(B, 1)
    for b in range(B):
        if not adaptive or ess[b] < N / 2:
            probs = torch.softmax(log_weights[b].double(), 0).cpu()
            ancestors[b] = torch.multinomial(probs, N, replacement=True, generator=generators[b])
    return ancestors


def propose(
    z: torch.Tensor, u: torch.Tensor, t: float, t_next: float, value: ValueModel, prompts: list[str],
    generators: list[torch.Generator], sampler: SamplerConfig, proposals: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """M = `proposals` draws of each row's transition from z (B, C, h, w) at t with velocity u; returns the
    draw the value ranks highest (B, C, h, w) and all scores (M, B). Draw 0 is the plain step's draw."""
    M, rows = proposals, z.shape[0]
    candidates = torch.stack([sampler_step(z, u, t, t_next, generators, sampler) for _ in range(M)])  # (M, B, C, h, w)
    t_next_batch = torch.full((M * rows,), t_next, device=z.device, dtype=z.dtype)
    scores = value(candidates.flatten(0, 1), t_next_batch, prompts * M).view(M, rows)
    return candidates[scores.argmax(0), torch.arange(rows, device=z.device)], scores


class _Particles(StepHooks):
    """Before a resampling step's move, particles are resampled by their value potentials (the velocity
    reused); a proposing step replaces the move by the value's pick among `fk.proposals` draws."""

    def __init__(self, value: ValueModel | None, prompts: list[str], resample_generators, fk: FKConfig, num_steps: int):
        self.value, self.prompts, self.resample_generators, self.fk = value, prompts, resample_generators, fk
        self.resampling, self.proposing = fk.resampling(num_steps), fk.proposing(num_steps)
        self.history, self.resamples, self.value_calls = None, 0, 0

    def step(self, k, z, u, t, t_next, generators, config):
        rows, N = z.shape[0], self.fk.particles
        B = rows // N
        if k in self.resampling:
            t_batch = torch.full((rows,), t, device=z.device, dtype=z.dtype)
            log_g, self.history = log_potential(self.value.from_velocity(z, t_batch, self.prompts, u).float(), self.history, self.fk)
            self.value_calls += rows
            ancestors = resample(log_g.view(B, N).cpu(), self.resample_generators, self.fk.adaptive)
            self.resamples += int((ancestors != torch.arange(N)).any(-1).sum())
            idx = (ancestors + N * torch.arange(B).unsqueeze(1)).flatten().to(z.device)
            z, u, self.history = z[idx], u[idx], self.history[idx]
        if k in self.proposing:
            self.value_calls += self.fk.proposals * rows
            return propose(z, u, t, t_next, self.value, self.prompts, generators, config, self.fk.proposals)[0]
        return super().step(k, z, u, t, t_next, generators, config)


@torch.no_grad()
def particle_sample(
    model, value: ValueModel | None, reward: RewardModel, z: torch.Tensor, cond: Conditioning, prompts: list[str], *,
    times: torch.Tensor, generators: list[torch.Generator], resample_generators: list[torch.Generator],
    sampler: SamplerConfig, fk: FKConfig, null: Conditioning | None = None,
) -> ParticleResult:
    """z (B * N, C, h, w) initial noise, cond and prompts per row, generators per row (SDE and proposal
    noise), resample_generators per prompt. `value` may be None when no step proposes or resamples."""
    N, rows = fk.particles, z.shape[0]
    B = rows // N
    particles = _Particles(value, prompts, resample_generators, fk, len(times) - 1)
    if (particles.resampling or particles.proposing) and value is None:
        raise ValueError("FK resampling and proposals need a value model")
    z = integrate(model, z, cond, times=times, generators=generators, config=sampler, null_cond=null, hooks=particles).final
    images = model.decode(z)
    rewards = reward(images, prompts).float().view(B, N)
    best = rewards.argmax(-1) + N * torch.arange(B, device=rewards.device)
    return ParticleResult(z[best], images[best], rewards.flatten()[best], particles.resamples, particles.value_calls)
