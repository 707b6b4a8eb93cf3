"""The DiffusionNFT objective as the official code computes it (NVlabs/DiffusionNFT; where we match and
depart from its protocol: docs/nft.md), plus the paper's plain velocity form.

Rewards -> optimality probabilities: A = (R - mean over the prompt's group) / (std over the batch + 1e-4),
clipped to +-adv_clip, r = clamp(0.5 + A / (2 adv_clip), 0, 1). Implicit policies around the old one:
v+ = (1 - b) v_old + b v_theta, v- = (1 + b) v_old - b v_theta. Two betas exist in the official code and
confuse its users; here they are `nft_beta` (the mixing strength b) and `kl_weight` (the KL term).
"""

from dataclasses import dataclass

import torch

LOSS_FORMS = ("x0_normalized", "velocity")


@dataclass(kw_only=True)
class NFTLossConfig:
    """form: x0_normalized (the official default: x0-space MSE divided by its own stop-gradient mean
    absolute error, per sample, then scaled by adv_clip / nft_beta) | velocity (the paper's loss)."""

    nft_beta: float = 1.0  # the official GenEval / PickScore / HPS presets (0.1 for OCR and multi-reward)
    kl_weight: float = 1e-4
    adv_clip: float = 5.0
    form: str = "x0_normalized"

    def __post_init__(self):
        if self.form not in LOSS_FORMS:
            raise ValueError(f"nft.form={self.form!r} is not one of {LOSS_FORMS}")
        if not 0 < self.nft_beta:
            raise ValueError(f"nft.nft_beta={self.nft_beta} must be positive (the implicit policies' mixing strength)")
        if self.kl_weight < 0 or self.adv_clip <= 0:
            raise ValueError(f"nft.kl_weight={self.kl_weight} must be >= 0 and nft.adv_clip={self.adv_clip} > 0")


def optimality_probability(rewards: torch.Tensor, groups: torch.Tensor, adv_clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """rewards (N,), groups (N,) integer prompt-group ids -> (advantages (N,) clipped, r (N,) in [0, 1])."""
    if not torch.isfinite(rewards).all():
        bad = (~torch.isfinite(rewards)).sum().item()
        raise FloatingPointError(f"{bad} of {rewards.numel()} rewards are NaN or inf; check the reward model and the decoded images")
    rewards = rewards.double()
    ids, inverse = torch.unique(groups, return_inverse=True)
    sums = torch.zeros(len(ids), dtype=rewards.dtype).index_add_(0, inverse, rewards)
    counts = torch.zeros(len(ids), dtype=rewards.dtype).index_add_(0, inverse, torch.ones_like(rewards))
    centred = rewards - (sums / counts)[inverse]
    std = rewards.std(unbiased=False) if rewards.numel() > 1 else rewards.new_tensor(0.0)
    adv = (centred / (std + 1e-4)).clamp(-adv_clip, adv_clip)
    return adv.float(), (0.5 + adv / (2 * adv_clip)).clamp(0, 1).float()


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


def nft_loss(
    v_theta: torch.Tensor,
    v_old: torch.Tensor,
    target: torch.Tensor,
    t: torch.Tensor,
    r: torch.Tensor,
    cfg: NFTLossConfig,
    v_ref: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """v_theta, v_old, v_ref, target: (B, C, h, w); t, r: (B,). target is the regression's velocity at
    x_t (eps - x0 for x_t = (1 - t) x0 + t eps; the re-anchored target for partial rollouts).

    The x0-normalised form uses x0_hat(v) - x0_hat(target) = -t (v - target), which for the clean
    target is the official code's x0-space error. v_old (and v_ref) carry no gradient.
    Returns per-sample losses (B,), whose mean is the official batch loss, and their terms
    {"policy_loss", "kl"} (B,), detached.
    """
    b = cfg.nft_beta
    v_pos = (1 - b) * v_old + b * v_theta
    v_neg = (1 + b) * v_old - b * v_theta
    if cfg.form == "velocity":
        pos, neg = _per_sample((v_pos - target) ** 2), _per_sample((v_neg - target) ** 2)
        policy = r * pos + (1 - r) * neg
    else:
        tb = t.view(-1, *([1] * (target.dim() - 1)))

        def normalised(v):
            err = tb * (v - target)  # = x0 - x0_hat(v)
            scale = _per_sample(err.detach().double().abs()).clamp_min(1e-5).to(err.dtype)
            return _per_sample(err**2) / scale

        policy = cfg.adv_clip * (r * normalised(v_pos) + (1 - r) * normalised(v_neg)) / b
    kl = _per_sample((v_theta - v_ref) ** 2) if v_ref is not None else torch.zeros_like(policy)
    loss = policy + cfg.kl_weight * kl
    return loss, {"policy_loss": policy.detach(), "kl": kl.detach()}


def old_policy_decay(step: int, rate: float = 0.001, max_decay: float = 0.5) -> float:
    """The official schedule (decay_type 1): eta = min(0.001 step, 0.5), starting fully on-policy."""
    return min(rate * step, max_decay)


@torch.no_grad()
def ema_update(target: list[torch.Tensor], source: list[torch.Tensor], decay: float) -> None:
    """target <- decay * target + (1 - decay) * source, tensor by tensor."""
    for tgt, src in zip(target, source, strict=True):
        tgt.lerp_(src.to(tgt.dtype), 1 - decay)
