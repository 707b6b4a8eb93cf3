import pytest
import torch

from value.latent_reward import LatentRewardConfig, LatentRewardModel, push_forward
from value.latent_reward_head import FiLMAdapter, GatedCrossAttention, RewardHead

PROMPTS = ["a red one", "two blue sevens"]
# The fixture's MMDiT has 2 blocks; the second (its last) leaves its text tokens unfinished.
CONFIG = dict(blocks=2, image_taps=[1, 2], text_taps=[1], lora_rank=4, lora_alpha=8.0)


def test_film_adapters_start_as_the_identity_modulation():
    torch.manual_seed(0)
    adapter = FiLMAdapter(16, 24, 16)
    x = torch.randn(2, 5, 16)
    expected = adapter.proj(x + adapter.layer_embed)
    for temb in (torch.zeros(2, 24), 10 * torch.randn(2, 24)):
        torch.testing.assert_close(adapter(x, temb), expected)


def test_value_gates_start_at_one_half():
    torch.manual_seed(0)
    attn = GatedCrossAttention(16, 2, text=True, gated=True)
    tokens = torch.randn(3, 7, 16)
    for gate in (attn.gate_vis, attn.gate_text):
        torch.testing.assert_close(torch.sigmoid(gate(tokens)), torch.full((3, 7, 1), 0.5))


def test_the_head_reads_one_score_per_sample_and_fuses_levels_by_tokens():
    torch.manual_seed(0)
    head = RewardHead(16, 24, image_taps=2, text_taps=1, width=16, num_heads=2)
    image, text, temb = [torch.randn(3, 9, 16) for _ in range(2)], [torch.randn(3, 4, 16)], torch.randn(3, 24)
    view = head.view_tokens(image, text, temb)
    assert head([view]).shape == (3,)
    assert head([view, view]).shape == (3,)
    with pytest.raises(ValueError, match="2 image and 1 text taps"):
        head.view_tokens(image[:1], text, temb)


def test_the_trunk_with_fresh_lora_computes_the_backbone_s_own_tokens(sd3_model, latents):
    z, t = latents
    model = LatentRewardModel(sd3_model, LatentRewardConfig(**CONFIG))
    cond = sd3_model.encode_prompt(PROMPTS)
    _, image, _ = model.trunk(z, t, cond, [1, 2], [])
    theirs = sd3_model.block_features(z, t, cond, upto=2)
    for mine, ref in zip(image, theirs, strict=True):  # LoRA's B starts at zero
        torch.testing.assert_close(mine.transpose(1, 2).reshape(ref.shape), ref)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") or "lora_" in n for n in trainable)
    assert not any("lora_" in n for n, _ in sd3_model.named_parameters())  # the trunk is a copy; the generator is untouched


def test_scores_are_deterministic_and_differentiable_in_the_latent(sd3_model, latents):
    z, t = latents
    torch.manual_seed(0)
    model = LatentRewardModel(sd3_model, LatentRewardConfig(**CONFIG, noise_levels=[0.4])).eval()
    z = z.clone().requires_grad_(True)
    v = model(z, t, PROMPTS)
    assert v.shape == (2,)
    torch.testing.assert_close(v, model(z, t, PROMPTS))  # the ensemble's noise is seeded
    (grad,) = torch.autograd.grad(v.sum(), z)
    assert grad.abs().sum() > 0


def test_pushing_a_noisy_latent_forward_gives_the_noising_path_s_law():
    # z_t = (1 - t) z0 + t eps pushed to s must be distributed as (1 - s) z0 + s eps' (z0 fixed).
    gen = torch.Generator().manual_seed(0)
    n, z0, t, s = 200_000, 1.5, 0.3, 0.7
    z_t = (1 - t) * z0 + t * torch.randn(n, 1, 1, 1, generator=gen)
    z_s = push_forward(z_t, torch.full((n,), t), torch.full((n,), s), torch.randn(n, 1, 1, 1, generator=gen))
    assert z_s.mean().item() == pytest.approx((1 - s) * z0, abs=0.01)
    assert z_s.std().item() == pytest.approx(s, abs=0.01)


def test_bad_settings_are_refused(sd3_model, flux_model):
    with pytest.raises(ValueError, match="text tokens unfinished"):
        LatentRewardModel(sd3_model, LatentRewardConfig(blocks=2, image_taps=[2], text_taps=[2]))
    with pytest.raises(ValueError, match=r"latent_reward.blocks=3 is outside 1..2"):
        LatentRewardModel(sd3_model, LatentRewardConfig(blocks=3, image_taps=[3], text_taps=[]))
    with pytest.raises(ValueError, match="SD3-family MMDiT"):
        LatentRewardModel(flux_model, LatentRewardConfig(blocks=1, image_taps=[1], text_taps=[1]))
    with pytest.raises(ValueError, match=r"image_taps=\[3\] must be increasing blocks in 1..blocks=2"):
        LatentRewardConfig(blocks=2, image_taps=[3])
    with pytest.raises(ValueError, match="noise_levels"):
        LatentRewardConfig(noise_levels=[1.0])
    model = LatentRewardModel(sd3_model, LatentRewardConfig(**CONFIG))
    with pytest.raises(ValueError, match="2 latents but 1 prompts"):
        model(torch.zeros(2, 4, 8, 8), torch.zeros(2), PROMPTS[:1])
