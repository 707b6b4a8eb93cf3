"""Adjoint Matching (AM; Domingo-Enrich et al., ICLR 2025) and Efficient Adjoint Matching (EAM; Shin et
al. 2026, reconstructed from its abstract: docs/adjoint.md): regressions whose fixed point samples the
reward-tilted law p_base(x0) exp(lambda r(x0)). Plain torch; `learner/adjoint_learner.py` passes its
DeepSpeed engine in as the policy.

Both regress the trained velocity onto a target whose conditional mean is the tilted velocity
u* = u_pre - (t / (1 - t)) grad log h_t, h_t(z) = E_base[exp(lambda r(x0)) | z_t = z] (t = 0 clean).
- AM: the current model's memoryless rollout (DDIM, eta = 1), the lean adjoint a_k = J_k^T a_{k+1} from
  a_N = -lambda grad r(x0) through the pretrained step's Jacobian J_k, and at a few steps k AM's regression
  dt ||c + sigma a_k||^2, i.e. u_theta onto u_pre + (t / (1 - t)) a_k.
- EAM: a few-step ODE endpoint x0 of the current model; a linear memoryless reference with terminal
  N(0, C^2 I) whose bridge is the forward kernel z_t = (1 - t) x0 + t eps, so the adjoint has a closed
  form and z_t is drawn from x0 directly; the terminal cost's gradient grad g = -lambda grad r - grad log p_pre - x0 / C^2,
  with grad log p_pre(x0) by Tweedie from the frozen model at a small time.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import SamplerConfig, StepHooks, ddim_mean_std, guided_velocity, per_sample_normal, sample

METHODS = ("am", "eam")


@dataclass(kw_only=True)
class AMConfig:
    """num_steps: the memoryless rollout's DDIM steps. eta: their DDIM eta; only 1 (memoryless: the noise
    and the sample independent) makes the tilted law AM's optimum. train_times: steps per rollout in the
    regression, half from the first 60% of the steps, as AM's code. clip_quantile: a (sample, step) loss whose
    sqrt exceeds an EMA (decay 0.9) of this quantile is dropped (AM's code: 0.9; <= 0 keeps every one)."""

    num_steps: int = 20
    eta: float = 1.0
    train_times: int = 4
    clip_quantile: float = 0.9

    def __post_init__(self):
        if self.num_steps < 2:
            raise ValueError(f"adjoint.am.num_steps={self.num_steps}: AM trains every step but the one from t = 1, so it needs at least 2")
        if self.eta != 1.0:
            raise ValueError(
                f"adjoint.am.eta={self.eta}: Adjoint Matching needs the memoryless schedule (eta=1, the DDPM posterior step); "
                "with any other eta the initial noise and the sample are dependent and training converges to a biased "
                "law (AM's value-function bias). Set adjoint.am.eta=1, or use adjoint.method=eam (deterministic rollouts)"
            )
        if not 1 <= self.train_times <= self.num_steps - 1:
            raise ValueError(f"adjoint.am.train_times={self.train_times} must lie in 1..{self.num_steps - 1} "
                             f"(the {self.num_steps}-step rollout's steps after the first)")
        if self.clip_quantile > 1:
            raise ValueError(f"adjoint.am.clip_quantile={self.clip_quantile} must be <= 1 (<= 0 turns the clip off)")


@dataclass(kw_only=True)
class EAMConfig:
    """num_steps: the Euler ODE steps to the endpoint (few, but enough that the endpoint follows the model's own law:
    EAM's regression pulls the model toward what this sampler draws). train_times: re-noised times per endpoint, t ~ U(min_time,
    1 - min_time). ref_std: C, the linear reference's terminal std (the optimum does not depend on it; it trades
    bias for the target's variance). score_time: tau0 of the Tweedie score of the pretrained model at the endpoint."""

    num_steps: int = 10
    train_times: int = 4
    min_time: float = 0.02
    ref_std: float = 1.0
    score_time: float = 0.05

    def __post_init__(self):
        if self.num_steps < 1:
            raise ValueError(f"adjoint.eam.num_steps={self.num_steps}: the endpoint's ODE needs at least 1 step")
        if self.train_times < 1:
            raise ValueError(f"adjoint.eam.train_times={self.train_times} must be at least 1")
        if not 0 < self.min_time < 0.5:
            raise ValueError(f"adjoint.eam.min_time={self.min_time} must lie in (0, 0.5)")
        if self.ref_std <= 0:
            raise ValueError(f"adjoint.eam.ref_std={self.ref_std} must be > 0 (C, a standard deviation)")
        if not 0 < self.score_time < 1:
            raise ValueError(f"adjoint.eam.score_time={self.score_time} must lie in (0, 1)")


@dataclass(kw_only=True)
class AdjointConfig:
    """method: am | eam. reward_multiplier: lambda of the target p_base exp(lambda r) (AM's code: 100 with
    ImageReward); the same lambda makes the two methods' runs comparable. cfg_scale: guidance of the training
    rollouts only (AM's code: the adjoint and the regression run without it)."""

    method: str = "eam"
    reward_multiplier: float = 100.0
    cfg_scale: float = 1.0
    am: AMConfig = field(default_factory=AMConfig)
    eam: EAMConfig = field(default_factory=EAMConfig)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"adjoint.method={self.method!r} is not one of {METHODS}")
        if not self.reward_multiplier > 0:
            raise ValueError(f"adjoint.reward_multiplier={self.reward_multiplier} must be > 0: it is lambda of the target "
                             "p_base exp(lambda r); 0 is the base model, a negative one minimises the reward")
        if self.cfg_scale < 0:
            raise ValueError(f"adjoint.cfg_scale={self.cfg_scale} must be >= 0 (1 turns guidance off)")

    @property
    def num_steps(self) -> int:
        return self.am.num_steps if self.method == "am" else self.eam.num_steps


# ---- AM ---------------------------------------------------------------------------------------------
class DDIMSteps(StepHooks):
    """Steps of `ddim_mean_std` with noise from each row's generator (eta = 1: AM's memoryless rollout)."""

    def __init__(self, eta: float):
        self.eta = eta

    def step(self, k, z, u, t, t_next, generators, config):
        mean, std = ddim_mean_std(z, u, t, t_next, self.eta)
        if std == 0:
            return mean
        return mean + std * per_sample_normal(tuple(z.shape[1:]), generators, z.device).to(z.dtype)


def lean_adjoint(step_mean, latents: torch.Tensor, a_final: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """AM's lean adjoint along a detached trajectory: a_N = a_final, a_k = J_k^T a_{k+1} with J_k the Jacobian
    of the pretrained step's mean k -> k+1 at latents[k] (one VJP per step, back to front).

    step_mean(z, k) -> (mean of step k, the pretrained velocity u_pre(z) there). latents (N+1, B, ...).
    Returns (adjoints (N+1, B, ...), u_pre (N, B, ...) at latents[0..N-1])."""
    n = latents.shape[0] - 1
    adjoints, velocities = [a_final.detach()], []
    for k in reversed(range(n)):
        with torch.enable_grad():
            z = latents[k].detach().requires_grad_(True)
            mean, u = step_mean(z, k)
            (a,) = torch.autograd.grad(mean, z, grad_outputs=adjoints[0])
        adjoints.insert(0, a.detach())
        velocities.insert(0, u.detach())
    return torch.stack(adjoints), torch.stack(velocities)


def am_regression(u_pre: torch.Tensor, a: torch.Tensor, t: float, dt: float) -> tuple[torch.Tensor, float]:
    """(target velocity, weight) of AM's regression at a step from t (0 < t < 1) of size dt: u_pre + (t / (1 - t)) a_k,
    weighted 2 dt (1 - t) / t, so weight x ||u - target||^2 = dt ||c + sigma a_k||^2 with c = -(2 / sigma)(u - u_pre),
    sigma^2 = 2 t / (1 - t): AM's per-step loss. a_k is the adjoint at the step's start, as AM's code pairs them.
    (The discrete form, the step's DDIM mean moved by -std^2 a, overshoots the tilt by O(dt): by 27% at 20 steps in
    tests/learner/test_adjoint_closed_form.py, where this form is unbiased within the check's noise.)"""
    if not 0 < t < 1:
        raise ValueError(f"AM's regression needs 0 < t < 1, not t={t}: t / (1 - t) is infinite at the noise end")
    return u_pre + (t / (1 - t)) * a, 2 * dt * (1 - t) / t


def stratified_steps(num_steps: int, count: int, rng: np.random.Generator) -> list[int]:
    """AM's code's choice of steps among 1..num_steps-1 (the step from t = 1 is never trained): count // 2 distinct
    ones from the first 60% of them, the rest from the last 40%, sorted; a plain draw where a part has too few."""
    n = num_steps - 1
    middle, first = round(n * 0.6), count // 2
    if first > middle or count - first > n - middle:
        return sorted((1 + rng.choice(n, count, replace=False)).tolist())
    early = rng.choice(middle, first, replace=False)
    late = middle + rng.choice(n - middle, count - first, replace=False)
    return sorted((1 + np.concatenate([early, late])).tolist())


class QuantileClip:
    """AM's code's per-sample loss clip: drop losses whose sqrt exceeds an EMA (decay 0.9) of the batch's `quantile`
    of sqrt(loss); as in AM's code the first value is taken as is and the second averaged with it. State: (value, updates)."""

    DECAY = 0.9

    def __init__(self, quantile: float):
        self.quantile, self.value, self.updates = quantile, 0.0, 0

    def mask(self, losses: torch.Tensor) -> torch.Tensor:
        """losses (n,) detached -> (n,) float mask of the kept ones (all ones when the clip is off)."""
        if self.quantile <= 0:
            return torch.ones_like(losses)
        q = torch.quantile(losses.sqrt(), self.quantile).item()
        if self.updates < 1 / self.DECAY:
            self.value = q / (self.updates + 1) + self.value * self.updates / (self.updates + 1)
        else:
            self.value = self.DECAY * self.value + (1 - self.DECAY) * q
        self.updates += 1
        return (losses.sqrt() < self.value).to(losses.dtype)


# ---- EAM --------------------------------------------------------------------------------------------
def reference_variance(t: torch.Tensor, ref_std: float) -> torch.Tensor:
    """s_t^2 = t^2 + (1 - t)^2 C^2: the linear reference's marginal variance (its terminal is N(0, C^2 I))."""
    return t**2 + (1 - t) ** 2 * ref_std**2


def tweedie_score(x0: torch.Tensor, u: torch.Tensor, t: float) -> torch.Tensor:
    """grad log p_t at x0 from the velocity u there: -(x0 + (1 - t) u) / t (EAM's pretrained terminal score at small t)."""
    return -(x0 + (1 - t) * u) / t


def terminal_cost_grad(x0: torch.Tensor, grad_r: torch.Tensor, score_pre: torch.Tensor, lam: float, ref_std: float) -> torch.Tensor:
    """grad g(x0) = -lambda grad r - grad log p_pre - x0 / C^2: the terminal cost that tilts the reference's
    N(0, C^2 I) into p_pre exp(lambda r)."""
    return -lam * grad_r - score_pre - x0 / ref_std**2


def eam_target(z_t: torch.Tensor, t: torch.Tensor, grad_g: torch.Tensor, ref_std: float) -> torch.Tensor:
    """u_lin(z_t) + (t C^2 / s_t^2) grad g(x0): the reference velocity ((t - (1 - t) C^2) / s_t^2) z_t plus the
    closed-form adjoint a_t = (C^2 (1 - t) / s_t^2) grad g scaled by t / (1 - t). t (B,) broadcast over z_t."""
    t = t.view(-1, *([1] * (z_t.dim() - 1)))
    s2 = reference_variance(t, ref_std)
    return ((t - (1 - t) * ref_std**2) * z_t + t * ref_std**2 * grad_g) / s2


def eam_weight(t: torch.Tensor) -> torch.Tensor:
    """2 (1 - t) / t: the AM-form weight, so weight x ||u - target||^2 = ||c + sigma a||^2."""
    return 2 * (1 - t) / t


# ---- the losses on a generator --------------------------------------------------------------------
@dataclass
class Endpoints:
    """A detached rollout of the current model, the reward at its endpoint x0 (B, C, h, w) and its gradient there."""

    latents: torch.Tensor  # the whole trajectory (N+1, B, ...)
    reward: torch.Tensor
    grad_r: torch.Tensor

    @property
    def x0(self) -> torch.Tensor:
        return self.latents[-1]


def reward_gradient(score, x0: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(r (B,), grad_x0 r (B, ...)) of a differentiable score(z, t, prompts) at t = 0."""
    with torch.enable_grad():
        z = x0.detach().requires_grad_(True)
        r = score(z, torch.zeros(len(prompts), device=z.device, dtype=z.dtype), prompts)
        (grad,) = torch.autograd.grad(r.sum(), z, allow_unused=True) if r.requires_grad else (None,)
    grad = torch.zeros_like(x0) if grad is None else grad
    if not (torch.isfinite(r).all() and torch.isfinite(grad).all()):
        raise FloatingPointError("the reward or its gradient at the rollout's endpoint is NaN or inf; AM and EAM need a "
                                 "finite reward gradient: check the reward's weights and the decoded images")
    if not grad.any():
        raise ValueError("the reward's gradient at every endpoint of the batch is zero: AM and EAM need a differentiable "
                         "reward (CLIP score, HPSv2, an aesthetic predictor: every reward kind here); a thresholded or "
                         "binary score (a GenEval-style verifier) gives no gradient, use DiffusionNFT or Flow-GRPO for it")
    return r.detach(), grad.detach()


def rollout_endpoints(policy, score, cond: Conditioning, prompts: list[str], *, times: torch.Tensor, seeds: list[int],
                      latent_shape, cfg: AdjointConfig, null_cond: Conditioning | None = None, hooks: StepHooks | None = None) -> Endpoints:
    """The current model's detached rollout from seeded noise (AM: memoryless DDIM steps; EAM: Euler ODE)."""
    sampler = SamplerConfig(num_steps=times.shape[0] - 1, cfg_scale=cfg.cfg_scale)
    with torch.no_grad():
        trajectory = sample(policy, cond, times=times, seeds=seeds, latent_shape=latent_shape, config=sampler,
                            null_cond=null_cond, hooks=hooks)
    reward, grad_r = reward_gradient(score, trajectory.final, prompts)
    return Endpoints(latents=trajectory.latents, reward=reward, grad_r=grad_r)


def am_loss(policy, reference, ends: Endpoints, cond: Conditioning, *, times: torch.Tensor, steps: list[int],
            lam: float, clip: QuantileClip) -> tuple[torch.Tensor, dict[str, float]]:
    """AM's loss on one micro-batch of rollouts: the lean adjoint with the frozen reference (no guidance), then the
    regression at `steps` (indices into the trajectory's steps, from 1: t < 1)."""

    pairs = list(zip(times[:-1].tolist(), times[1:].tolist()))  # step k runs from pairs[k][0] to pairs[k][1]

    def step_mean(z, k):
        t, t_next = pairs[k]
        u = reference.velocity(z, torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype), cond)
        return ddim_mean_std(z, u, t, t_next, 1.0)[0], u

    adjoints, u_pre = lean_adjoint(step_mean, ends.latents, -lam * ends.grad_r)
    z, t, target, weight = [], [], [], []
    for k in steps:
        t_k, t_next = pairs[k]
        tgt, w = am_regression(u_pre[k], adjoints[k], t_k, t_k - t_next)
        z.append(ends.latents[k])
        target.append(tgt)
        t.append(torch.full((tgt.shape[0],), t_k, device=tgt.device, dtype=tgt.dtype))
        weight.append(torch.full((tgt.shape[0],), w, device=tgt.device, dtype=tgt.dtype))
    z, t, target, weight = (torch.cat(x) for x in (z, t, target, weight))
    u = policy.velocity(z, t, Conditioning.concat([cond] * len(steps)))
    losses = weight * (u.float() - target).pow(2).flatten(1).mean(1)
    mask = clip.mask(losses.detach())
    loss = (losses * mask).sum() / losses.numel()
    return loss, {"loss": loss.item(), "score": ends.reward.mean().item(), "kept": mask.mean().item(),
                  "adjoint_norm": adjoints[0].flatten(1).norm(dim=1).mean().item(), "clip_threshold": clip.value}


def eam_loss(policy, reference, ends: Endpoints, cond: Conditioning, *, lam: float, cfg: EAMConfig,
             generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """EAM's loss on one micro-batch of endpoints: grad g by the Tweedie score of the frozen reference (no guidance),
    train_times re-noised times per endpoint drawn from `generator` (CPU), the closed-form target."""
    x0 = ends.x0
    B, M = x0.shape[0], cfg.train_times
    with torch.no_grad():
        t0 = torch.full((B,), cfg.score_time, device=x0.device, dtype=x0.dtype)
        score_pre = tweedie_score(x0, reference.velocity(x0, t0, cond), cfg.score_time)
        grad_g = terminal_cost_grad(x0, ends.grad_r, score_pre, lam, cfg.ref_std)
        t = cfg.min_time + (1 - 2 * cfg.min_time) * torch.rand(M * B, generator=generator, dtype=torch.float64)
        t = t.to(device=x0.device, dtype=x0.dtype)
        eps = torch.randn((M * B, *x0.shape[1:]), generator=generator).to(device=x0.device, dtype=x0.dtype)
        x0s, grads = x0.repeat(M, *([1] * (x0.dim() - 1))), grad_g.repeat(M, *([1] * (x0.dim() - 1)))
        tt = t.view(-1, *([1] * (x0.dim() - 1)))
        z_t = (1 - tt) * x0s + tt * eps
        target = eam_target(z_t, t, grads, cfg.ref_std)
    u = policy.velocity(z_t, t, Conditioning.concat([cond] * M))
    loss = (eam_weight(t) * (u.float() - target).pow(2).flatten(1).mean(1)).mean()
    return loss, {"loss": loss.item(), "score": ends.reward.mean().item(),
                  "grad_g_norm": grad_g.flatten(1).norm(dim=1).mean().item()}


def nfe_per_sample(cfg: AdjointConfig) -> dict[str, int]:
    """Transformer passes per training sample: forwards without graph, forward+backward pairs (the reference's
    VJPs and the regression), and reward VJPs (decoder + reward)."""
    guided = 2 if cfg.cfg_scale != 1 else 1
    if cfg.method == "am":
        n = cfg.am.num_steps
        return {"forward": n * guided, "forward_backward": n + cfg.am.train_times, "reward_vjp": 1}
    return {"forward": cfg.eam.num_steps * guided + 1, "forward_backward": cfg.eam.train_times, "reward_vjp": 1}

