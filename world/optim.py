"""The one optimiser recipe every tiny-world component trains with: AdamW on a one-cycle schedule."""

import torch


def one_cycle(params, *, lr: float, steps: int, weight_decay: float = 0.0, warmup: float = 0.1):
    """(optimizer, scheduler): linear-ish warm-up over `warmup` of the steps to `lr`, then cosine decay."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 2), pct_start=warmup)


def take_step(loss: torch.Tensor, opt, sched, progress=None, *, clip_params=None) -> None:
    opt.zero_grad()
    loss.backward()
    if clip_params is not None:
        torch.nn.utils.clip_grad_norm_(clip_params, 1.0)
    opt.step()
    sched.step()
    if progress is not None:
        progress.update(1)
