"""Re-anchoring the flow-matching regression at a partial rollout's z_tau (DESIGN.md section 4).

Given z_tau = (1 - tau) z0 + tau eps0 and t > tau, with a = (1 - t) / (1 - tau) and
s = sqrt(t^2 - a^2 tau^2), z_t = a z_tau + s eps has exactly the forward marginal of z_t given z0
(mean (1 - t) z0, std t), and d z_t / dt at fixed (z_tau, eps) is the regression target

    v = -z_tau / (1 - tau) + (t + (1 - t) tau^2 / (1 - tau)^2) / s * eps.

At tau = 0 this is the usual z_t = (1 - t) z0 + t eps with target eps - z0. The target grows like
1 / s as t -> tau, so callers train only at the sampler's times strictly above tau.
"""

import torch


def bridge(z_tau: torch.Tensor, tau: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z_tau, eps (B, C, h, w); tau, t (B,) with t > tau, tau < 1 -> (z_t, target velocity), both (B, C, h, w)."""
    if not bool((t > tau).all()) or not bool((tau < 1).all()):
        raise ValueError("the bridge needs tau < t for every row (train at times strictly above the stop time)")
    shape = (-1,) + (1,) * (z_tau.dim() - 1)
    tau, t = tau.view(shape).to(z_tau.dtype), t.view(shape).to(z_tau.dtype)
    a = (1 - t) / (1 - tau)
    s = (t**2 - a**2 * tau**2).clamp_min(0).sqrt()
    z_t = a * z_tau + s * eps
    target = -z_tau / (1 - tau) + (t + (1 - t) * tau**2 / (1 - tau) ** 2) / s * eps
    return z_t, target
