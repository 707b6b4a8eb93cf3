"""SD3 and FLUX adapters: save -> load round trips, feature taps, VAE, on tiny instances of the real classes."""

import pytest
import torch

from diffusion.model_config import ModelConfig, build_flow_model

PROMPTS = ["a red seven", "three green fives left of a blue two"]


def _load(family, path):
    return build_flow_model(ModelConfig(family=family, path=str(path), max_sequence_length=8))


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_save_and_load_give_identical_outputs(family, sd3_model, flux_model, sd3_dir, flux_dir, latents):
    original, path = (sd3_model, sd3_dir) if family == "sd3" else (flux_model, flux_dir)
    loaded = _load(family, path)
    z, t = latents
    with torch.no_grad():
        c0, c1 = original.encode_prompt(PROMPTS), loaded.encode_prompt(PROMPTS)
        assert torch.equal(c0.prompt_embeds, c1.prompt_embeds) and torch.equal(c0.pooled, c1.pooled)
        assert torch.equal(original.velocity(z, t, c0), loaded.velocity(z, t, c1))
        assert torch.equal(original.decode(z), loaded.decode(z))
    assert type(loaded) is type(original)


def _hooked_block_outputs(model, z, t, cond):
    """Image-stream hidden states after every block, captured from one full forward pass."""
    blocks = [*model.transformer.transformer_blocks, *getattr(model.transformer, "single_transformer_blocks", [])]
    outputs = []
    hooks = [b.register_forward_hook(lambda m, args, out: outputs.append(out[1])) for b in blocks]
    try:
        model.velocity(z, t, cond)
    finally:
        for h in hooks:
            h.remove()
    return outputs


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_features_equal_the_block_outputs_of_a_full_pass(family, sd3_model, flux_model, latents):
    model = sd3_model if family == "sd3" else flux_model
    z, t = latents
    with torch.no_grad():
        cond = model.encode_prompt(PROMPTS)
        reference = _hooked_block_outputs(model, z, t, cond)
        assert len(reference) == model.num_blocks
        for i in range(1, model.num_blocks + 1):
            feats = model.features(z, t, cond, upto=i)
            gh, gw = model.token_grid(8, 8)
            assert feats.shape == (2, model.feature_dim, gh, gw)
            tokens = reference[i - 1].transpose(1, 2).reshape(2, -1, gh, gw)
            assert torch.allclose(feats, tokens, atol=1e-5), f"block {i}"
        every = model.block_features(z, t, cond, upto=model.num_blocks)
        for i, feats in enumerate(every):
            assert torch.allclose(feats, reference[i].transpose(1, 2).reshape(feats.shape), atol=1e-5), f"block {i + 1}"


def test_features_run_only_the_requested_blocks(sd3_model, latents):
    z, t = latents
    calls = []
    sd3_model.transformer.transformer_blocks[1].register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        sd3_model.features(z, t, sd3_model.encode_prompt(PROMPTS), upto=1)
    assert calls == []
    with pytest.raises(ValueError, match="upto=3"):
        sd3_model.features(z, t, sd3_model.encode_prompt(PROMPTS), upto=3)


def test_vae_round_trip_shapes_and_range(sd3_model):
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        z = sd3_model.encode(images)
        x = sd3_model.decode(z)
    assert z.shape == (2, *sd3_model.latent_shape(16, 16)) == (2, 4, 8, 8)
    assert x.shape == images.shape and x.min() >= 0 and x.max() <= 1
    with pytest.raises(ValueError, match="divisible"):
        sd3_model.latent_shape(15, 16)


def test_decode_is_differentiable(sd3_model):
    z = torch.randn(1, 4, 8, 8, requires_grad=True)
    sd3_model.decode(z).mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_frozen_parts_stay_in_eval_mode(flux_model):
    flux_model.train()
    assert flux_model.transformer.training
    assert not any(m.training for m in flux_model.text_encoders.modules())
    assert not flux_model.vae.training


def test_tiny_tokenizer_keeps_every_caption_word_whole():
    from diffusion.tiny import CAPTION_WORDS, clip_tokenizer

    tokenizer = clip_tokenizer()
    for word in CAPTION_WORDS:
        assert len(tokenizer(word).input_ids) == 3, word  # <start> word <end>
