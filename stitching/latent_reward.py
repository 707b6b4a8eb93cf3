"""Training a latent reward model from preference pairs (DiNa-LRM's recipe), and reading its accuracy.

One training step: a batch of pairs, one noise level t per pair drawn uniformly and snapped to the
nearest of the backbone's 1,000 training times (the scheduler's table, shifted as it samples), one
noise shared by the pair's two latents, both scored in one pass, the likelihood's loss
(value/preference_likelihood.py). AdamW with linear warmup then a constant rate, gradients clipped, an
EMA of the trainable weights that becomes the model at the end (the release evaluates and exports it).
"""

import time
from dataclasses import dataclass

import torch

from value.latent_reward import LatentRewardModel
from value.preference_likelihood import check_likelihood, preference_loss
from value.preference_pairs import PreferencePairs
from value.value_model import ValueModel


@dataclass(kw_only=True)
class LatentRewardTrainingConfig:
    """The release's: lr 5e-5, weight decay 0.01, 1,000 warmup steps, clip 1.0, EMA 0.995, batch 4 per GPU.
    t_power: each pair's t is u^t_power, u ~ U(0, 1), before snapping: 1 is the release's uniform default,
    above 1 leans toward low noise (its `power` weighting scheme)."""

    steps: int = 3000
    batch_size: int = 32
    lr: float = 1.0e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    ema_decay: float = 0.995
    likelihood: str = "thurstone"
    t_power: float = 1.0

    def __post_init__(self):
        check_likelihood(self.likelihood)
        if self.t_power <= 0:
            raise ValueError(f"train.t_power={self.t_power} must be positive (1: t uniform)")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"train.steps={self.steps} and train.batch_size={self.batch_size} must be at least 1")


def snap_to_table(u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Each of u (B,) replaced by its nearest entry of `table` (K,)."""
    return table[(u[:, None] - table[None, :]).abs().argmin(dim=1)]


def noised_pair(pairs: PreferencePairs, t: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sides of each pair noised to its t (B,) with its one noise (B, C, h, w)."""
    t4 = t.view(-1, 1, 1, 1)
    return (1 - t4) * pairs.chosen + t4 * noise, (1 - t4) * pairs.rejected + t4 * noise


def train_latent_reward(model: LatentRewardModel, pairs: PreferencePairs, cfg: LatentRewardTrainingConfig, *,
                        seed: int, log=None) -> dict:
    """Train `model`'s LoRA and head on `pairs`; the EMA weights are in `model` on return. log(step, row) is
    called every 50 steps and at the last. Returns {train_seconds, final_loss, final_train_acc}."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / max(cfg.warmup_steps, 1)))
    ema = [p.detach().clone() for p in params]
    table = model.backbone.schedule(1000, *pairs.chosen.shape[-2:])[:-1].float()  # the 1,000 training times
    gen = torch.Generator().manual_seed(seed)
    device, dtype = params[0].device, params[0].dtype
    order, cursor = torch.randperm(len(pairs), generator=gen), 0
    model.train()
    start, row = time.perf_counter(), {}
    for step in range(1, cfg.steps + 1):
        if cursor + cfg.batch_size > len(order):  # a fresh permutation each epoch
            order, cursor = torch.randperm(len(pairs), generator=gen), 0
        batch = pairs.select(order[cursor : cursor + cfg.batch_size])
        cursor += cfg.batch_size
        t = snap_to_table(torch.rand(len(batch), generator=gen) ** cfg.t_power, table)
        z_w, z_l = noised_pair(batch, t, torch.randn(batch.chosen.shape, generator=gen))
        scores = model.score(torch.cat([z_w, z_l]).to(device, dtype), torch.cat([t, t]).to(device, dtype),
                             batch.prompts + batch.prompts)
        s_w, s_l = scores.float().chunk(2)
        loss = preference_loss(s_w, s_l, t.to(device), cfg.likelihood)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the latent reward's loss is {loss.item()} at step {step} (scores NaN or inf); "
                                     f"lower train.lr={cfg.lr} or check the pair file's latents")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        warmup.step()
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.lerp_(p.detach(), 1 - cfg.ema_decay)
        row = {"loss": loss.item(), "train_acc": (s_w > s_l).float().mean().item(), "grad_norm": grad_norm.item(),
               "lr": opt.param_groups[0]["lr"]}
        if log is not None and (step % 50 == 0 or step == cfg.steps):
            log(step, row)
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    model.eval()
    return {"train_seconds": time.perf_counter() - start, "final_loss": row["loss"], "final_train_acc": row["train_acc"]}


@torch.no_grad()
def pairwise_accuracy(value: ValueModel, pairs: PreferencePairs, t: float, *, seed: int, batch_size: int = 256) -> float:
    """How often `value` scores the chosen latent above the rejected one, both noised to t with one shared
    noise per pair (seeded: every value reads the same noisy pairs). Ties count as wrong."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(pairs.chosen.shape, generator=gen)
    device = next(iter(value.parameters()), torch.empty(0)).device
    right = 0
    for start, part in pairs.batches(batch_size):
        tt = torch.full((len(part),), float(t))
        z_w, z_l = noised_pair(part, tt, noise[start : start + len(part)])
        scores = value(torch.cat([z_w, z_l]).to(device), torch.cat([tt, tt]).to(device), part.prompts + part.prompts)
        if not torch.isfinite(scores).all():
            raise FloatingPointError(f"{type(value).__name__} scored NaN or inf on pairs {start}..{start + len(part) - 1} "
                                     f"at t={t}; check its weights (a damaged export?) and the pairs' latents")
        s_w, s_l = scores.float().cpu().chunk(2)
        right += int((s_w > s_l).sum())
    return right / len(pairs)
