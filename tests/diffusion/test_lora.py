import pytest
import torch

from diffusion.lora import LoraConfig, add_lora, load_lora_state_dict, lora_disabled, lora_state_dict


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_lora_starts_as_identity_and_switches_off_to_the_base(family, sd3_model, flux_model, latents):
    model = sd3_model if family == "sd3" else flux_model
    z, t = latents
    cond = model.encode_prompt(["a red seven", "a blue two"])
    with torch.no_grad():
        base = model.velocity(z, t, cond)
        add_lora(model.transformer, LoraConfig(rank=4, alpha=4.0))
        assert torch.equal(model.velocity(z, t, cond), base)  # B is zero-initialised
        for name, p in model.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_()
        tuned = model.velocity(z, t, cond)
        with lora_disabled(model.transformer):
            assert torch.equal(model.velocity(z, t, cond), base)
        assert torch.equal(model.velocity(z, t, cond), tuned)
    assert (tuned - base).abs().max() > 1e-3


def test_lora_targets_the_attention_projections_and_only_they_train(sd3_model, latents):
    add_lora(sd3_model.transformer, LoraConfig(rank=2, alpha=2.0))
    names = {n for n, _ in sd3_model.transformer.named_parameters() if "lora_A" in n}
    for proj in ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj"):
        assert any(f".{proj}.lora_A" in n for n in names), proj
    z, t = latents
    sd3_model.velocity(z, t, sd3_model.encode_prompt(["a", "b"])).square().mean().backward()
    for name, p in sd3_model.named_parameters():
        assert (p.grad is not None) == ("lora_" in name), name


def test_lora_weights_move_between_models(sd3_model, latents):
    from diffusion.sd3 import SD3FlowModel
    from diffusion.tiny import tiny_sd3_pipeline

    add_lora(sd3_model.transformer, LoraConfig(rank=2, alpha=2.0))
    with torch.no_grad():
        for name, p in sd3_model.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_()
    other = SD3FlowModel(tiny_sd3_pipeline(seed=0), max_sequence_length=8)
    add_lora(other.transformer, LoraConfig(rank=2, alpha=2.0))
    load_lora_state_dict(other.transformer, lora_state_dict(sd3_model.transformer))
    z, t = latents
    with torch.no_grad():
        cond = sd3_model.encode_prompt(["a red seven", "a"])
        assert torch.equal(other.velocity(z, t, cond), sd3_model.velocity(z, t, cond))
