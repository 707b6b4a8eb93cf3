"""Flow-GRPO's objective (yifan123/flow_grpo, `scripts/train_sd3.py`): each SDE step of a rollout is an
action of a Gaussian policy; per step, the PPO-clipped ratio against the sampling weights' log-probability
times the group advantage, plus a KL to the reference on the step means."""

from dataclasses import dataclass

import torch


@dataclass(kw_only=True)
class GRPOConfig:
    """window_size: 0 is Flow-GRPO (SDE steps, all trained, at every step of the rollout but the last, which
    stays deterministic); w > 0 is Flow-GRPO-Fast: an SDE window of w steps, ODE elsewhere, only the
    window trained. window_end: the steps the window's end is drawn from each step ("a-b"; "" is anywhere in
    the first half, w..num_steps // 2); with a partial rollout.horizon the window ends where the rollout
    stops, drawn from the horizon's steps, and the value scores it there. sde_noise: a in the SDE's noise
    level nu_t = a sqrt(t / (1 - t)) (official 0.7). clip_range: the ratio's clip (official 1e-4; 1e-5 in the Fast and no-CFG presets). kl_weight: beta of the KL on the
    step means (official 0.04 GenEval / OCR, 0.01 PickScore, 0 Fast). adv_clip: advantages are clipped to
    +-adv_clip (5). updates_per_batch: optimizer steps per sampled batch, each on a contiguous part of
    its rows (official: 2; from the second on the ratio differs from 1 and the clip acts)."""

    window_size: int = 0
    window_end: str = ""
    sde_noise: float = 0.7
    clip_range: float = 1e-4
    kl_weight: float = 0.0
    adv_clip: float = 5.0
    updates_per_batch: int = 2

    def __post_init__(self):
        if self.clip_range <= 0:
            raise ValueError(f"grpo.clip_range={self.clip_range} must be > 0 (official 1e-4)")
        if self.sde_noise <= 0:
            raise ValueError(f"grpo.sde_noise={self.sde_noise} must be > 0: Flow-GRPO's policy is the SDE step (official 0.7)")
        if self.kl_weight < 0 or self.adv_clip <= 0:
            raise ValueError(f"grpo.kl_weight={self.kl_weight} must be >= 0 and grpo.adv_clip={self.adv_clip} > 0")
        if self.updates_per_batch < 1:
            raise ValueError(f"grpo.updates_per_batch={self.updates_per_batch} must be at least 1")
        if self.window_size < 0:
            raise ValueError(f"grpo.window_size={self.window_size} must be >= 0 (0: every step but the last)")


def grpo_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, cfg: GRPOConfig,
              mean: torch.Tensor | None = None, ref_mean: torch.Tensor | None = None, nu: float = 1.0
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One SDE step of B rows: log_prob (B,) under the trained weights, old_log_prob (B,) under the sampling
    weights, advantages (B,); with cfg.kl_weight > 0 the step means (B, C, h, w) of both and the step's
    noise level nu. Returns per-row losses (B,) max(-A rho, -A clip(rho)) + kl_weight ||mean - ref||^2 /
    (2 nu^2) (per element), and per-row parts: policy, kl, ratio, clipped (1 where the clip acted)."""
    adv = advantages.clamp(-cfg.adv_clip, cfg.adv_clip)
    ratio = torch.exp(log_prob - old_log_prob)
    policy = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range))
    kl = torch.zeros_like(policy)
    if cfg.kl_weight > 0:
        kl = (mean - ref_mean).pow(2).flatten(1).mean(1) / (2 * nu**2)
    parts = {"policy_loss": policy.detach(), "kl": kl.detach(), "ratio": ratio.detach(),
             "clipped": ((ratio - 1).abs() > cfg.clip_range).float().detach()}
    return policy + cfg.kl_weight * kl, parts
