"""Stage 1 on a problem with a known answer, and on the tiny real models. Seeded: the same probe set
and seed give the same fit."""

import pytest
import torch
import torch.nn.functional as F

from diffusion.conditioning import Conditioning
from stitching.search import backbone_taps, search_stitch_point


class FakeBackbone:
    """Three blocks of features (8 channels on a 2x2 grid): fixed random maps of the noisy latent."""

    num_blocks = 3

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.maps = [torch.randn(8, 3, generator=g) for _ in range(3)]
        self.last = None

    def encode(self, images):
        return F.avg_pool2d(images, 8)  # (B, 3, 2, 2)

    def encode_prompt(self, prompts):
        return Conditioning(torch.zeros(len(prompts), 1, 1), torch.zeros(len(prompts), 1))

    def block_features(self, z, t, cond, *, upto):
        self.last = [torch.einsum("dc,bchw->bdhw", m, z).tanh() for m in self.maps[:upto]]
        return self.last


class FakeTower:
    num_prefix_tokens, num_blocks = 1, 4

    def __init__(self, grid):
        self.grid = grid


class FakeReward:
    """Its tokens entering block 2 are an exact affine map of the backbone's block-2 features: resampled
    (bilinear) to a 3x3 grid, or, on a 4x4 grid (2 x the backbone's), one map per sub-position of each
    backbone token (a pixel shuffle). Its other blocks see unrelated noise."""

    def __init__(self, backbone: FakeBackbone, grid: tuple[int, int]):
        g = torch.Generator().manual_seed(1)
        self.tower = FakeTower(grid)
        self.r = 2 if grid == (4, 4) else 1
        out = 5 * self.r**2
        self.backbone, self.weight, self.bias = backbone, torch.randn(out, 8, generator=g), torch.randn(out, generator=g)
        self.cls = torch.randn(5, generator=g)
        self.gen = g

    def preprocess(self, images):
        return images

    def tokens_at(self, pixels, j):
        h = self.backbone.last[1]
        if self.r == 1:
            h = F.interpolate(h, size=self.tower.grid, mode="bilinear", align_corners=False)
        maps = torch.einsum("ed,bdhw->behw", self.weight, h) + self.bias.view(-1, 1, 1)
        maps = F.pixel_shuffle(maps, self.r) if self.r > 1 else maps
        tokens = maps.flatten(2).transpose(1, 2)
        if j != 2:
            tokens = torch.randn(tokens.shape, generator=self.gen)
        return torch.cat([self.cls.expand(h.shape[0], 1, 5), tokens], dim=1)


@pytest.mark.parametrize("grid", [(3, 3), (4, 4)])
def test_search_finds_the_exact_affine_map_and_its_block(grid):
    backbone = FakeBackbone()
    reward = FakeReward(backbone, grid)
    batches = [torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    result = search_stitch_point(*backbone_taps(backbone), reward, batches, max_j=3, seed=0)
    assert (result.best.i, result.best.j) == (2, 2)
    assert result.best.nmse < 1e-8
    assert result.best.upsample == reward.r
    assert torch.allclose(result.best.weight, reward.weight, atol=1e-4)
    assert torch.allclose(result.best.bias, reward.bias, atol=1e-4)
    assert torch.allclose(result.best.prefix[0], reward.cls, atol=1e-6)
    # Every spatial token of every probe image is a sample: the reward grid's, or the backbone's 2x2.
    assert result.num_tokens == 3 * 8 * (9 if reward.r == 1 else 4)
    assert len(result.nmse) == 9
    assert min(v for (i, j), v in result.nmse.items() if j != 2) > 0.5  # unrelated tokens: no fit
    assert min(result.nmse[(1, 2)], result.nmse[(3, 2)]) > 1e-4  # related blocks fit, not exactly
    assert [row["nmse"] for row in result.table()] == [result.nmse[k] for k in sorted(result.nmse)]


def test_the_stitch_at_its_fit_reproduces_an_exact_sub_position_map():
    """A pixel-shuffle map the search recovered, loaded into a StitchLayer, gives the reward's tokens."""
    from value.stitched import StitchLayer

    backbone = FakeBackbone()
    reward = FakeReward(backbone, (4, 4))
    batches = [torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    fit = search_stitch_point(*backbone_taps(backbone), reward, batches, max_j=2, seed=0).best
    stitch = StitchLayer(8, 5, (4, 4), upsample=fit.upsample)
    stitch.init_from_fit(fit.weight, fit.bias, fit.prefix)
    with torch.no_grad():
        assert torch.allclose(stitch(backbone.last[1]), reward.tokens_at(None, 2), atol=1e-4)


def test_search_on_the_tiny_models_is_seeded(sd3_model, clip_reward, probe_images):
    with torch.no_grad():
        a = search_stitch_point(*backbone_taps(sd3_model), clip_reward, probe_images, max_j=2, seed=3)
        b = search_stitch_point(*backbone_taps(sd3_model), clip_reward, probe_images, max_j=2, seed=3)
    assert set(a.nmse) == {(i, j) for i in (1, 2) for j in (1, 2)}
    assert a.nmse == b.nmse and torch.equal(a.best.weight, b.best.weight)
    assert a.best.weight.shape == (clip_reward.tower.width, sd3_model.feature_dim)
    assert all(0 <= v <= 1 for v in a.nmse.values())
