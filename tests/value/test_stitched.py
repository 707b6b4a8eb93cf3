"""The stitched value at initialisation is the stage-1 linear fit; export/import round-trips and refuses
a different backbone or reward. Seeded tiny models throughout."""

import json

import pytest
import torch
import torch.nn.functional as F

from diffusion.conditioning import Conditioning
from diffusion.sd3 import SD3FlowModel
from diffusion.tiny import tiny_sd3_pipeline
from stitching.search import backbone_taps, search_stitch_point
from tests.tiny_models import stitched_from_fit, tiny_clip_reward
from value.stitched import BackboneFeatures, LatentFeatures, StitchedValue, StitchLayer, load_stitched, save_stitched

PROMPTS = ["a red seven", "two blue threes"]


def _stitched(backbone, reward, probe) -> StitchedValue:
    return stitched_from_fit(backbone, reward, probe, max_j=2)


@pytest.fixture
def probe():
    g = torch.Generator().manual_seed(0)
    return [torch.rand(6, 3, 16, 16, generator=g) for _ in range(2)]


def test_at_initialisation_the_stitch_is_the_linear_fit(sd3_model, latents, probe):
    reward = tiny_clip_reward()
    value = _stitched(sd3_model, reward, probe)
    z, t = latents
    with torch.no_grad():
        fit = search_stitch_point(*backbone_taps(sd3_model), reward, probe, max_j=2, seed=0).best
        h = sd3_model.features(z, t, sd3_model.encode_prompt(["", ""]), upto=value.i)
        up = F.interpolate(h, size=reward.tower.grid, mode="bilinear", align_corners=False)
        expected = torch.einsum("ed,bdhw->bhwe", fit.weight, up).flatten(1, 2) + fit.bias
        tokens = value.tokens(z, t, PROMPTS)
        assert torch.allclose(tokens[:, 1:], expected, atol=1e-5)
        assert torch.allclose(tokens[:, 0], fit.prefix[0].expand(2, -1))
        scores = value(z, t, PROMPTS)
        assert torch.allclose(scores, reward.score_embedding(reward.tower.tail(tokens, value.j), PROMPTS), atol=1e-6)
    assert scores.shape == (2,)


def test_value_is_differentiable_in_the_latent_and_trains_only_stitch_and_tower(sd3_model, latents, probe):
    value = _stitched(sd3_model, tiny_clip_reward(), probe)
    z, t = latents
    z = z.clone().requires_grad_(True)
    value(z, t, PROMPTS).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    names = {n.split(".")[0] for n, _ in value.named_parameters()}
    assert names == {"stitch", "tower"}


def test_export_import_round_trip(sd3_model, latents, probe, tmp_path):
    reward = tiny_clip_reward()
    value = _stitched(sd3_model, reward, probe)
    with torch.no_grad():
        value.stitch.mlp[-1].weight.normal_()  # not the initial state, so loading must restore weights
    save_stitched(value, tmp_path / "value", {"backbone": "tiny-sd3", "reward": "tiny-clip"})
    loaded = load_stitched(tmp_path / "value", SD3FlowModel(tiny_sd3_pipeline(seed=0), max_sequence_length=8), tiny_clip_reward())
    z, t = latents
    with torch.no_grad():
        assert torch.allclose(loaded(z, t, PROMPTS), value(z, t, PROMPTS), atol=1e-6)
    assert (loaded.i, loaded.j) == (value.i, value.j)


def test_prompted_features_read_each_latents_own_prompt(sd3_model, latents):
    z, t = latents
    with torch.no_grad():
        prompted = BackboneFeatures(sd3_model, 2, prompted=True)
        expected = sd3_model.features(z, t, sd3_model.encode_prompt(PROMPTS), upto=2)
        assert torch.allclose(prompted(z, t, PROMPTS), expected, atol=1e-6)
        assert torch.allclose(prompted(z, t, PROMPTS[::-1]), sd3_model.features(
            z, t, sd3_model.encode_prompt(PROMPTS[::-1]), upto=2), atol=1e-6)  # from the cache, per prompt
        null = BackboneFeatures(sd3_model, 2)(z, t, PROMPTS)
        assert torch.allclose(null, sd3_model.features(z, t, sd3_model.encode_prompt(["", ""]), upto=2), atol=1e-6)
        assert not torch.allclose(null, expected, atol=1e-3)


def test_a_prompted_value_round_trips_prompted(sd3_model, latents, probe, tmp_path):
    value = stitched_from_fit(sd3_model, tiny_clip_reward(), probe, max_j=2, prompted=True)
    save_stitched(value, tmp_path / "value", {"backbone": "tiny-sd3", "reward": "tiny-clip"})
    loaded = load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())
    z, t = latents
    with torch.no_grad():
        assert loaded.features.prompted
        assert torch.allclose(loaded(z, t, PROMPTS), value(z, t, PROMPTS), atol=1e-6)
        unprompted = load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())
        unprompted.features.prompted = False
        assert not torch.allclose(unprompted(z, t, PROMPTS), value(z, t, PROMPTS), atol=1e-4)


def test_loading_against_another_backbone_or_reward_is_a_clear_error(sd3_model, probe, tmp_path):
    save_stitched(_stitched(sd3_model, tiny_clip_reward(), probe), tmp_path / "value", {"backbone": "tiny-sd3"})
    other_backbone = SD3FlowModel(tiny_sd3_pipeline(seed=5), max_sequence_length=8)
    with pytest.raises(ValueError, match="another backbone"):
        load_stitched(tmp_path / "value", other_backbone, tiny_clip_reward())
    with pytest.raises(ValueError, match="another reward"):
        load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward(seed=7))
    with pytest.raises(FileNotFoundError, match="launch/stitch.py"):
        load_stitched(tmp_path / "nothing", sd3_model, tiny_clip_reward())


def test_a_machine_that_computes_the_last_bits_differently_still_loads_the_value(sd3_model, probe, tmp_path, monkeypatch):
    """Another CPU's kernels move computed floats (the prompt encodings, diffusers' sin-cos position
    table) in their last bits; the same files must still load, and the difference is reported."""
    save_stitched(_stitched(sd3_model, tiny_clip_reward(), probe), tmp_path / "value", {"backbone": "tiny-sd3"})
    encode = sd3_model.encode_prompt

    def drifted(prompts):
        c = encode(prompts)
        return Conditioning(c.prompt_embeds * (1 + 1e-6), c.pooled + 1e-6)

    monkeypatch.setattr(sd3_model, "encode_prompt", drifted)
    with torch.no_grad():
        sd3_model.transformer.pos_embed.pos_embed.mul_(1 + 1e-6)
    try:
        loaded = load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())
    finally:
        with torch.no_grad():
            sd3_model.transformer.pos_embed.pos_embed.div_(1 + 1e-6)
    assert 0 < loaded.probe_differences["backbone"] < 1e-4 and loaded.probe_differences["reward"] == 0


def test_one_changed_weight_or_another_text_path_is_refused_naming_what_differs(sd3_model, probe, tmp_path, monkeypatch):
    save_stitched(_stitched(sd3_model, tiny_clip_reward(), probe), tmp_path / "value", {"backbone": "tiny-sd3"})
    block = sd3_model.transformer.transformer_blocks[0]
    weight = next(block.parameters())
    with torch.no_grad():
        weight.view(-1)[0] += 1e-7  # one weight, by less than any probe would see
    try:
        with pytest.raises(ValueError, match="another backbone.*weights differ"):
            load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())
    finally:
        with torch.no_grad():
            weight.view(-1)[0] -= 1e-7
    encode = sd3_model.encode_prompt  # same weights, a tokenizer that reads every prompt as the null prompt
    monkeypatch.setattr(sd3_model, "encode_prompt", lambda prompts: encode([""] * len(prompts)))
    with pytest.raises(ValueError, match=r"same weights, but its probe differs by \d\.\d+e[-+]\d+"):
        load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())


def test_a_changed_config_or_an_old_card_is_refused(sd3_model, probe, tmp_path):
    save_stitched(_stitched(sd3_model, tiny_clip_reward(), probe), tmp_path / "value", {"backbone": "tiny-sd3"})
    card_path = tmp_path / "value" / "value.json"
    card = json.loads(card_path.read_text())
    card["backbone_identity"]["config"]["qk_norm"] = "layer_norm"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="config differs \\(qk_norm='layer_norm' there"):
        load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())
    del card["backbone_identity"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="no backbone identity.*rebuild it"):
        load_stitched(tmp_path / "value", sd3_model, tiny_clip_reward())


def test_vae_stitch_reads_the_latent_itself(sd3_model, latents):
    reward = tiny_clip_reward()
    stitch = StitchLayer(4, reward.tower.width, reward.tower.grid)
    value = StitchedValue(LatentFeatures(4), reward, j=1, stitch=stitch)
    z, t = latents
    with torch.no_grad():
        assert value(z, t, PROMPTS).shape == (2,)
    assert value.i == 0


def test_a_reward_grid_twice_the_backbones_gets_a_sub_position_map_that_round_trips(sd3_model, latents, probe, tmp_path):
    """As in the tiny world (4x4 MMDiT tokens, an 8x8 CLIP grid): each backbone token's four reward
    tokens get their own rows of the fit (a pixel shuffle), not one bilinearly interpolated token."""
    import copy

    from value.clip_score import CLIPScore
    from value.image_transform import ImageTransform
    from value.tiny import TINY_CLIP_CONFIG, tiny_open_clip, tiny_tokenizer

    config = copy.deepcopy(TINY_CLIP_CONFIG)
    config["vision_cfg"]["patch_size"] = 4  # 32 px / 4: an 8x8 grid over the tiny SD3's 4x4

    def reward():
        return CLIPScore.from_open_clip_model(tiny_open_clip(1, config), tiny_tokenizer(config), ImageTransform(size=32))

    value = stitched_from_fit(sd3_model, reward(), probe, max_j=1)
    assert value.stitch.upsample == 2 and value.stitch.proj.out_channels == 4 * value.reward.tower.width
    z, t = latents
    with torch.no_grad():
        h = sd3_model.features(z, t, sd3_model.encode_prompt(["", ""]), upto=value.i)
        shuffled = F.pixel_shuffle(value.stitch.proj(h), 2)  # (B, Cr, 8, 8): sub-position (a, b) of token (y, x)
        assert torch.allclose(value.tokens(z, t, PROMPTS)[:, 1:], shuffled.flatten(2).transpose(1, 2), atol=1e-6)
        value.stitch.mlp[-1].weight.normal_()
        save_stitched(value, tmp_path / "value", {"backbone": "tiny-sd3", "reward": "tiny-clip-p4"})
        loaded = load_stitched(tmp_path / "value", sd3_model, reward())
        assert loaded.stitch.upsample == 2
        assert torch.allclose(loaded(z, t, PROMPTS), value(z, t, PROMPTS), atol=1e-6)
