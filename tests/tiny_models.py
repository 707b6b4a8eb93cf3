"""Small seeded helpers the tests share (fixtures live in the conftest files)."""

import torch

from stitching.search import backbone_taps, search_stitch_point
from value.clip_score import CLIPScore
from value.image_transform import ImageTransform
from value.stitched import BackboneFeatures, StitchedValue, StitchLayer
from value.tiny import tiny_open_clip, tiny_tokenizer

MINI_WORLD_RECIPE = dict(
    verifier_steps=2, vae_steps=2, clip_steps=2, preference_steps=2, generator_steps=2, generator_scenes=32,
    eval_prompts_per_family=1, eval_samples_per_prompt=1, sample_steps=2, threads=1,
)


def tiny_clip_reward(seed: int = 1) -> CLIPScore:
    """An untrained tiny open_clip CLIP score (ViT patch 8 on 32 px: a 4x4 grid)."""
    return CLIPScore.from_open_clip_model(tiny_open_clip(seed), tiny_tokenizer(), ImageTransform(size=32))


def stitched_from_fit(backbone, reward, probe, *, max_j: int, prompted: bool = False) -> StitchedValue:
    """A StitchedValue at its stage-1 fit (the residual MLP's random layer seeded)."""
    with torch.no_grad():
        fit = search_stitch_point(*backbone_taps(backbone), reward, probe, max_j=max_j, seed=0).best
    torch.manual_seed(0)
    stitch = StitchLayer(backbone.feature_dim, reward.tower.width, reward.tower.grid, upsample=fit.upsample)
    stitch.init_from_fit(fit.weight, fit.bias, fit.prefix)
    return StitchedValue(BackboneFeatures(backbone, fit.i, prompted=prompted), reward, j=fit.j, stitch=stitch)
