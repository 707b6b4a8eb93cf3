"""StitchVM stage 1: for every backbone block i and reward block j, the least-squares map from noisy
backbone tokens to clean reward tokens, and its normalised error; the stitch point is the argmin.

Each probe image x0 gets one t ~ U[0, 1] and one eps; z_t = (1 - t) z0 + t eps goes through the
backbone (null prompt, timestep t), x0 through the reward tower. The backbone grid is resampled
(bilinear) to the reward grid and every spatial token is one regression sample: tokens_j = W h_i + b;
where the reward grid is r x the backbone's (`value.stitched.upsample_factor`), every backbone token is
one sample instead, its target the r x r reward tokens it covers (the stitch's pixel shuffle).
The fit is plain float64 least squares (the bias is the one addition: the conv that W initialises has
one). It is accumulated as normal equations over probe batches, so memory does not grow with the probe
set and real backbones (24 blocks x 1536 channels) fit in host memory.

Normalised MSE = residual sum of squares / total sum of squares about the per-channel mean (1 - R^2;
with r >= 2 a channel is a channel at one sub-position).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from diffusion.flow_model import FlowModel
from value.reward_model import RewardModel
from value.stitched import upsample_factor


@dataclass
class StitchFit:
    """The fit at one (i, j): weight (r * r * Cr, Cb), bias (r * r * Cr,), prefix (P, Cr) = mean prefix
    tokens at j; upsample r as in `StitchLayer` (1: bilinear)."""

    i: int
    j: int
    nmse: float
    weight: torch.Tensor
    bias: torch.Tensor
    prefix: torch.Tensor
    upsample: int = 1


@dataclass
class SearchResult:
    """nmse[(i, j)] for every pair searched; best: the argmin's full fit."""

    nmse: dict[tuple[int, int], float]
    best: StitchFit
    num_tokens: int

    def table(self) -> list[dict]:
        return [{"i": i, "j": j, "nmse": v} for (i, j), v in sorted(self.nmse.items())]


class _NormalEquations:
    """Running X^T X, X^T Y, Y^T Y and sums for X (N, Cb) -> Y (N, Cr), X with a ones column, float64."""

    def __init__(self):
        self.xtx = self.xty = self.y_sum = self.y_sq = None
        self.n = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = torch.cat([x.double(), torch.ones(x.shape[0], 1, dtype=torch.float64, device=x.device)], dim=1)
        y = y.double()
        parts = (x.T @ x, x.T @ y, y.sum(0), (y * y).sum(0))
        if self.xtx is None:
            self.xtx, self.xty, self.y_sum, self.y_sq = parts
        else:
            self.xtx += parts[0]
            self.xty += parts[1]
            self.y_sum += parts[2]
            self.y_sq += parts[3]
        self.n += x.shape[0]

    def solve(self) -> tuple[torch.Tensor, float]:
        """(coefficients (Cb + 1, Cr), normalised MSE)."""
        xtx, xty = self.xtx.cpu(), self.xty.cpu()
        coef = torch.linalg.lstsq(xtx, xty, driver="gelsd").solution
        # RSS = Y^T Y - 2 tr(C^T X^T Y) + tr(C^T X^T X C), from the sufficient statistics.
        rss = self.y_sq.sum().cpu() - 2 * (coef * xty).sum() + (coef * (xtx @ coef)).sum()
        tss = (self.y_sq - self.y_sum**2 / self.n).sum().cpu()
        return coef, float(rss.clamp_min(0) / tss)


def _samples(h: torch.Tensor, grid: tuple[int, int], r: int) -> torch.Tensor:
    """Features (B, C, gh, gw) -> regression inputs: (B * gh * gw, C) with r >= 2, else resampled to the
    reward grid, (B * Gh * Gw, C)."""
    h = h.float()
    if r == 1:
        h = F.interpolate(h, size=grid, mode="bilinear", align_corners=False)
    return h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])


def _targets(tokens: torch.Tensor, grid: tuple[int, int], r: int) -> torch.Tensor:
    """Reward tokens (B, Gh * Gw, C) without the prefix -> regression targets (B * Gh * Gw / r^2, C * r^2),
    the r x r tokens over one backbone token in pixel-shuffle order."""
    maps = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)
    maps = F.pixel_unshuffle(maps, r) if r > 1 else maps
    return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])


def backbone_taps(backbone: FlowModel, max_i: int | None = None):
    """(encode, feature_maps) for `search_stitch_point`: the backbone's blocks 1..max_i, null prompt."""
    max_i = max_i or backbone.num_blocks
    null = backbone.encode_prompt([""])

    def feature_maps(z_t: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        return backbone.block_features(z_t, t, null.repeat_interleave(z_t.shape[0]), upto=max_i)

    return backbone.encode, feature_maps


def latent_taps(backbone: FlowModel):
    """(encode, feature_maps) for the VAE-stitch ablation: the noisy latent itself is the one "block"."""
    return backbone.encode, lambda z_t, t: [z_t]


@torch.no_grad()
def search_stitch_point(encode, feature_maps, reward: RewardModel, batches, *, max_j: int = 4, seed: int = 0) -> SearchResult:
    """encode: clean images -> latents z0; feature_maps(z_t, t) -> the candidate maps (B, C, gh, gw) for
    i = 1, 2, ... (`backbone_taps`, `latent_taps`); batches: the probe set, an iterable of clean images
    (B, 3, H, W) in [0, 1]. Searches every map i and reward blocks j in 1..max_j."""
    max_j = min(max_j, reward.tower.num_blocks)
    grid, prefix = reward.tower.grid, reward.tower.num_prefix_tokens
    gen = torch.Generator().manual_seed(seed)
    eqs: dict[tuple[int, int], _NormalEquations] = {}
    factors: dict[int, int] = {}
    prefix_sum = {j: 0.0 for j in range(1, max_j + 1)}
    n_images = 0
    for images in batches:
        B = images.shape[0]
        z0 = encode(images)
        t = torch.rand(B, generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        tb = t.view(-1, 1, 1, 1).to(z0)
        feats = feature_maps((1 - tb) * z0 + tb * eps.to(z0), t.to(z0))
        pixels = reward.preprocess(images)
        targets = {j: reward.tokens_at(pixels, j) for j in range(1, max_j + 1)}
        for j, tok in targets.items():
            prefix_sum[j] = prefix_sum[j] + tok[:, :prefix].double().sum(0).cpu()
        for i, h in enumerate(feats, start=1):
            r = factors.setdefault(i, upsample_factor(tuple(h.shape[-2:]), grid))
            x = _samples(h, grid, r)
            for j, tok in targets.items():
                eqs.setdefault((i, j), _NormalEquations()).add(x, _targets(tok[:, prefix:], grid, r))
        n_images += B
    if not eqs:
        raise ValueError("the probe set is empty; give at least one batch of images")
    nmse, coefs = {}, {}
    for key, eq in eqs.items():
        coefs[key], nmse[key] = eq.solve()
    i, j = min(nmse, key=nmse.get)
    coef = coefs[(i, j)].float()
    best = StitchFit(
        i=i, j=j, nmse=nmse[(i, j)], weight=coef[:-1].T.contiguous(), bias=coef[-1].contiguous(),
        prefix=(prefix_sum[j] / n_images).float(), upsample=factors[i],
    )
    return SearchResult(nmse=nmse, best=best, num_tokens=eqs[(i, j)].n)
