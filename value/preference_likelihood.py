"""The likelihood a latent reward model is trained with: P(w beats l) from two scores read at one noise level.

DiNa-LRM's (noise-calibrated Thurstone): each item's utility is N(s, v(t)) with v(t) = 2 t^2 + 0.05, so
P(w > l | t) = Phi((s_w - s_l) / sqrt(2 v(t))): sharp at t = 0 (denominator 0.32), soft at t = 1 (2.05),
which forgives a heavily noised pair for being ambiguous. The loss the release optimises is the fidelity
loss 1 - sqrt(P). The release's ablations: `thurstone_constant` (v = 0.5 at every t), `bt`
(-log sigmoid(s_w - s_l)) and `bt_margin` (the same with a margin of 1).
"""

import torch
import torch.nn.functional as F

LIKELIHOODS = ("thurstone", "thurstone_constant", "bt", "bt_margin")
VARIANCE_SCALE, MIN_VARIANCE = 2.0, 0.05  # the release's per-item v(t) = 2 t^2 + 0.05
CONSTANT_VARIANCE = 0.5
BT_MARGIN = 1.0
_EPS = 1e-6  # inside the square root, as the release (sqrt's gradient at P = 0)


def check_likelihood(kind: str) -> None:
    if kind not in LIKELIHOODS:
        raise ValueError(f"likelihood={kind!r} is not one of {LIKELIHOODS}")


def item_variance(t: torch.Tensor, kind: str) -> torch.Tensor:
    """v(t), the variance of one item's utility around its score (Thurstone likelihoods only)."""
    if kind == "thurstone":
        return VARIANCE_SCALE * t**2 + MIN_VARIANCE
    return torch.full_like(t, CONSTANT_VARIANCE)


def preference_probability(s_w: torch.Tensor, s_l: torch.Tensor, t: torch.Tensor, kind: str = "thurstone") -> torch.Tensor:
    """P(w beats l) (B,) from scores s_w, s_l (B,) read at noise level t (B,) (t = 0 clean)."""
    check_likelihood(kind)
    delta = s_w - s_l
    if kind == "bt":
        return torch.sigmoid(delta)
    if kind == "bt_margin":
        return torch.sigmoid(delta - BT_MARGIN)
    z = delta / (2 * item_variance(t, kind) + _EPS).sqrt()
    return 0.5 * (1 + torch.erf(z / 2**0.5))


def preference_loss(s_w: torch.Tensor, s_l: torch.Tensor, t: torch.Tensor, kind: str = "thurstone") -> torch.Tensor:
    """The batch's mean loss: the fidelity loss 1 - sqrt(P) for the Thurstone kinds (the release's choice),
    -log P for the Bradley-Terry ones (log-sigmoid, stable for large gaps)."""
    check_likelihood(kind)
    if kind in ("bt", "bt_margin"):
        return -F.logsigmoid(s_w - s_l - (BT_MARGIN if kind == "bt_margin" else 0.0)).mean()
    return (1 - (preference_probability(s_w, s_l, t, kind) + _EPS).sqrt()).mean()
