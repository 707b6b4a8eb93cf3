import json

import pytest
import torch
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

from diffusion.sd3 import SD3FlowModel
from diffusion.tiny import tiny_sd3_pipeline
from value.latent_reward import LatentRewardConfig, LatentRewardModel
from value.latent_reward_checkpoint import load_latent_reward, save_latent_reward
from value.value_config import ValueConfig, build_value

PROMPTS = ["a red one", "two blue sevens"]
CONFIG = dict(blocks=2, image_taps=[1, 2], text_taps=[1], lora_rank=4, lora_alpha=8.0, num_heads=2)


def trained_looking(backbone, **overrides) -> LatentRewardModel:
    """A latent reward whose LoRA and head are seeded random weights (as if trained: B no longer zero)."""
    torch.manual_seed(0)
    model = LatentRewardModel(backbone, LatentRewardConfig(**{**CONFIG, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.3)
    return model.eval()


def test_an_export_reloads_to_the_same_scores(sd3_model, latents, tmp_path):
    z, t = latents
    model = trained_looking(sd3_model)
    save_latent_reward(model, tmp_path / "lrm", {"backbone": "tiny"})
    loaded = load_latent_reward(tmp_path / "lrm", sd3_model)
    torch.testing.assert_close(loaded(z, t, PROMPTS), model(z, t, PROMPTS), rtol=0, atol=0)


def test_the_value_switch_loads_it(sd3_model, latents, tmp_path):
    from tests.tiny_models import tiny_clip_reward

    z, t = latents
    model = trained_looking(sd3_model)
    save_latent_reward(model, tmp_path / "lrm", {"backbone": "tiny"})
    value = build_value(ValueConfig(kind="latent_reward", path=str(tmp_path / "lrm")), sd3_model, tiny_clip_reward(),
                        key="rollout.value")
    torch.testing.assert_close(value(z, t, PROMPTS), model(z, t, PROMPTS), rtol=0, atol=0)
    with pytest.raises(ValueError, match="rollout.value.path to the folder python launch/latent_reward.py"):
        ValueConfig(kind="latent_reward").check_path("rollout.value", "rollout.horizon='4-5' scores partial rollouts")


def test_another_backbone_is_refused(sd3_model, tmp_path):
    save_latent_reward(trained_looking(sd3_model), tmp_path / "lrm", {"backbone": "tiny seed 0"})
    other = SD3FlowModel(tiny_sd3_pipeline(seed=5), max_sequence_length=8)
    with pytest.raises(ValueError, match=r"built for another backbone \(tiny seed 0\): its weights differ.*launch/latent_reward.py"):
        load_latent_reward(tmp_path / "lrm", other)


def test_a_backbone_of_another_shape_is_refused_naming_the_setting_that_differs(sd3_model, tmp_path):
    save_latent_reward(trained_looking(sd3_model), tmp_path / "lrm", {"backbone": "tiny"})
    card = json.loads((tmp_path / "lrm" / "latent_reward.json").read_text())
    card["backbone_identity"]["config"]["in_channels"] = 16  # as if trained on a 16-channel latent (FLUX's, SD3's)
    (tmp_path / "lrm" / "latent_reward.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="its config differs \\(in_channels=16 there, 4 here\\)"):
        load_latent_reward(tmp_path / "lrm", sd3_model)


def test_a_missing_or_damaged_export_is_refused(sd3_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="no latent reward model in .*launch/latent_reward.py"):
        load_latent_reward(tmp_path / "nothing", sd3_model, setting="rollout.value.path")
    save_latent_reward(trained_looking(sd3_model), tmp_path / "lrm", {"backbone": "tiny"})
    (tmp_path / "lrm" / "latent_reward.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="rollout.value.path"):
        load_latent_reward(tmp_path / "lrm", sd3_model, setting="rollout.value.path")


def write_released(model: LatentRewardModel, folder) -> None:
    """The released checkpoint's layout, from the release's own names: config.json's `model` block, a PEFT
    adapter folder saved from a PeftModel around the backbone (`base_model.model.` in front), rm_head.pt."""
    cfg = model.config
    (folder / "checkpoint" / "backbone_lora").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": {
        "model_type": "thurstone", "num_transformer_layers": cfg.blocks, "use_lora": True, "freeze_backbone": False,
        "lora_config": {"r": cfg.lora_rank, "lora_alpha": cfg.lora_alpha, "init_lora_weights": "gaussian"},
        "visual_head_idx": cfg.image_taps, "text_head_idx": cfg.text_taps, "use_t_embed": True, "use_logistic": False,
        "reward_head": {"use_proj_in": False, "width": -1, "out_dim": 1, "num_queries": cfg.num_queries,
                        "num_attn_heads": cfg.num_heads, "dropout": 0.0}}}))
    lora = {f"base_model.model.{k}": v.contiguous() for k, v in get_peft_model_state_dict(model.trunk).items()}
    save_file(lora, str(folder / "checkpoint" / "backbone_lora" / "adapter_model.safetensors"))
    (folder / "checkpoint" / "backbone_lora" / "adapter_config.json").write_text(json.dumps({"r": cfg.lora_rank}))
    torch.save(model.head.state_dict(), folder / "checkpoint" / "rm_head.pt")


def test_the_released_layout_loads_and_scores_at_its_recommended_level(sd3_model, latents, tmp_path):
    z, t = latents
    source = trained_looking(sd3_model, noise_levels=[0.4])
    write_released(source, tmp_path / "dina")
    loaded = load_latent_reward(tmp_path / "dina", sd3_model)
    assert loaded.config.noise_levels == [0.4] and loaded.config.blocks == 2
    torch.testing.assert_close(loaded(z, t, PROMPTS), source(z, t, PROMPTS), rtol=0, atol=0)


def test_a_released_checkpoint_for_another_backbone_is_refused(sd3_model, tmp_path):
    write_released(trained_looking(sd3_model), tmp_path / "dina")
    spec = json.loads((tmp_path / "dina" / "config.json").read_text())
    spec["model"]["num_transformer_layers"] = 12
    spec["model"]["visual_head_idx"] = spec["model"]["text_head_idx"] = [4, 8, 12]
    (tmp_path / "dina" / "config.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="keeps 12 blocks, but this backbone has 2; load it with SD3.5 Medium"):
        load_latent_reward(tmp_path / "dina", sd3_model)
    # a head trained at another width
    write_released(trained_looking(sd3_model), tmp_path / "dina2")
    head = torch.load(tmp_path / "dina2" / "checkpoint" / "rm_head.pt", weights_only=True)
    head["query_tokens"] = torch.zeros(1, 4, 32)
    torch.save(head, tmp_path / "dina2" / "checkpoint" / "rm_head.pt")
    with pytest.raises(ValueError, match=r"reward head does not fit .*query_tokens"):
        load_latent_reward(tmp_path / "dina2", sd3_model)
    (tmp_path / "dina2" / "checkpoint" / "rm_head.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint/rm_head.pt"):
        load_latent_reward(tmp_path / "dina2", sd3_model)
