"""A reward checkpoint that does not fit gives one clear error naming the file and the fix."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from value.reward_config import RewardConfig, build_reward_model


def test_wrong_keys_for_the_architecture(tiny_arch, tmp_path):
    path = tmp_path / "wrong.safetensors"
    save_file({"visual.proj": torch.zeros(4, 4), "not_clip.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match=r"does not load into open_clip 'tiny-test-vit'.*reward.arch"):
        build_reward_model(RewardConfig(kind="open_clip", arch=tiny_arch, path=str(path)))


def test_hpsv2_checkpoint_for_another_architecture(clip_model, tmp_path):
    path = tmp_path / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": clip_model.state_dict()}, path)
    with pytest.raises(ValueError, match="does not load into open_clip 'ViT-B-32'"):
        build_reward_model(RewardConfig(kind="hpsv2", arch="ViT-B-32", path=str(path)))


def test_unknown_architecture_suggests_names(tmp_path):
    with pytest.raises(ValueError, match=r"'ViT-L-14-336-quickgelu'"):
        build_reward_model(RewardConfig(kind="open_clip", arch="ViT-L-14-336-quickgel", path=str(tmp_path / "x")))


def test_missing_file(tiny_arch, tmp_path):
    with pytest.raises(FileNotFoundError, match="reward.path"):
        build_reward_model(RewardConfig(kind="open_clip", arch=tiny_arch, path=str(tmp_path / "missing.safetensors")))


def test_aesthetic_head_with_wrong_keys(tiny_arch, clip_model, tmp_path):
    clip_path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip_model.state_dict().items()}, str(clip_path))
    head_path = tmp_path / "head.pth"
    torch.save({"fc.weight": torch.zeros(1, 32)}, head_path)
    with pytest.raises(ValueError, match=r"reward.head_path.*missing keys \['layers.0.bias'"):
        build_reward_model(RewardConfig(kind="aesthetic", arch=tiny_arch, path=str(clip_path), head_path=str(head_path)))


class Payload:
    pass


def test_a_pickle_with_objects_is_refused(tiny_arch, clip_model, tmp_path):
    clip_path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip_model.state_dict().items()}, str(clip_path))
    head_path = tmp_path / "head.pth"
    torch.save({"layers.0.weight": Payload()}, head_path)
    with pytest.raises(ValueError, match="do not read as weights.*Unpickling"):
        build_reward_model(RewardConfig(kind="aesthetic", arch=tiny_arch, path=str(clip_path), head_path=str(head_path)))
    with open(head_path, "wb") as f:
        pickle.dump({"layers.0.weight": Payload()}, f)
    with pytest.raises(ValueError, match="not a zip-format torch.save archive"):
        build_reward_model(RewardConfig(kind="aesthetic", arch=tiny_arch, path=str(clip_path), head_path=str(head_path)))


def test_transformers_directory_with_missing_weights(hf_clip_dir):
    for f in hf_clip_dir.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(ValueError, match="reward.path"):
        build_reward_model(RewardConfig(kind="transformers_clip", path=str(hf_clip_dir)))


def test_reward_config_validation():
    with pytest.raises(ValueError, match="reward.kind='pickscore'"):
        RewardConfig(kind="pickscore", path="x")
    with pytest.raises(ValueError, match="reward.path is empty"):
        RewardConfig(kind="hpsv2")
    with pytest.raises(ValueError, match="reward.head_path is empty"):
        RewardConfig(kind="aesthetic", path="x")
