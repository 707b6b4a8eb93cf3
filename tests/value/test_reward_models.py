"""Every reward adapter loads the on-disk format of its real checkpoint and scores exactly like the
model it was saved from, computed independently with the library's own forward."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import CLIPModel, CLIPTokenizer

from tests.value.conftest import PROMPTS
from value.aesthetic import AestheticHead
from value.image_transform import ImageTransform
from value.reward_config import RewardConfig, build_reward_model
from value.tiny import TINY_CLIP_CONFIG, save_open_clip_dir, tiny_tokenizer


def _open_clip_reference(model, images, prompts, *, resize_mode="shortest"):
    """cos(image, text) through open_clip's own encode_image / encode_text."""
    pixels = ImageTransform(size=32, resize_mode=resize_mode)(images)
    with torch.no_grad():
        img = model.encode_image(pixels, normalize=True)
        txt = model.encode_text(tiny_tokenizer()(prompts), normalize=True)
    return (img * txt).sum(-1)


def test_open_clip_name_plus_safetensors(tiny_arch, clip_model, images, tmp_path):
    path = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in clip_model.state_dict().items()}, str(path))
    reward = build_reward_model(RewardConfig(kind="open_clip", arch=tiny_arch, path=str(path), scale=2.0))
    with torch.no_grad():
        scores = reward(images, PROMPTS)
    assert scores.shape == (3,)
    assert torch.allclose(scores, 2.0 * _open_clip_reference(clip_model, images, PROMPTS), atol=1e-5)


def test_open_clip_hub_directory(clip_model, images, tmp_path):
    folder = save_open_clip_dir(clip_model, TINY_CLIP_CONFIG, str(tmp_path / "dfn"), resize_mode="squash")
    reward = build_reward_model(RewardConfig(kind="open_clip", path=str(folder)))
    assert reward.transform.resize_mode == "squash"
    with torch.no_grad():
        assert torch.allclose(reward(images, PROMPTS), _open_clip_reference(clip_model, images, PROMPTS, resize_mode="squash"), atol=1e-5)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_hpsv2_checkpoint_format(tiny_arch, clip_model, images, tmp_path, prefix):
    # HPS_v2.1_compressed.pt: torch.save({"state_dict": ...}) of the whole open_clip model.
    path = tmp_path / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": {prefix + k: v for k, v in clip_model.state_dict().items()}}, path)
    reward = build_reward_model(RewardConfig(kind="hpsv2", arch=tiny_arch, path=str(path)))
    assert reward.transform.resize_mode == "longest" and reward.scale == 1.0
    wide = images[:, :, :, :40]  # not square: resized by the longest side and padded
    with torch.no_grad():
        assert torch.allclose(reward(wide, PROMPTS), _open_clip_reference(clip_model, wide, PROMPTS, resize_mode="longest"), atol=1e-5)


def test_transformers_clip_directory(hf_clip_dir, images):
    reward = build_reward_model(RewardConfig(kind="transformers_clip", path=str(hf_clip_dir)))
    model = CLIPModel.from_pretrained(hf_clip_dir).eval()
    tokens = CLIPTokenizer.from_pretrained(hf_clip_dir)(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        img = model.get_image_features(pixel_values=ImageTransform(size=32)(images)).pooler_output
        txt = model.get_text_features(**tokens).pooler_output
        expected = (F.normalize(img, dim=-1) * F.normalize(txt, dim=-1)).sum(-1)
        assert torch.allclose(reward(images, PROMPTS), expected, atol=1e-5)


def test_aesthetic_head_in_the_real_file_format(tiny_arch, clip_model, images, tmp_path):
    clip_path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip_model.state_dict().items()}, str(clip_path))
    torch.manual_seed(3)
    head = AestheticHead((32, 64, 16, 8, 4, 1))
    head_path = tmp_path / "sac+logos+ava1-l14-linearMSE.pth"
    torch.save(OrderedDict(head.state_dict()), head_path)  # a plain torch.save'd state dict, like the real one
    reward = build_reward_model(RewardConfig(kind="aesthetic", arch=tiny_arch, path=str(clip_path), head_path=str(head_path)))
    with torch.no_grad():
        emb = clip_model.encode_image(ImageTransform(size=32)(images), normalize=True)
        assert torch.allclose(reward(images, PROMPTS), head.eval()(emb), atol=1e-5)


def test_aesthetic_head_has_the_real_key_layout():
    real = {f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")}
    head = AestheticHead((768, 1024, 128, 64, 16, 1))
    assert set(head.state_dict()) == real
    assert head.state_dict()["layers.0.weight"].shape == (1024, 768)


def test_scores_are_differentiable_in_the_pixels(tiny_arch, clip_model, images, tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in clip_model.state_dict().items()}, str(path))
    reward = build_reward_model(RewardConfig(kind="open_clip", arch=tiny_arch, path=str(path)))
    x = images.clone().requires_grad_(True)
    reward(x, PROMPTS).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_one_prompt_per_image(tiny_arch, clip_model, images):
    reward = build_reward_model(RewardConfig(kind="random_tiny_clip"))
    with pytest.raises(ValueError, match="one prompt per image"):
        reward(images, PROMPTS[:2])
