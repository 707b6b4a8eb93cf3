"""Every loader x every damage a downloaded or copied weights file suffers: one error that names the setting
and the path (the table the closing note of the loaders' hardening lists, first lines included)."""

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from diffusion.model_config import ModelConfig, build_flow_model
from tests.tiny_models import stitched_from_fit, tiny_clip_reward
from value.reward_config import RewardConfig, build_reward_model
from value.stitched import WEIGHTS, load_stitched, save_stitched
from value.tiny import TINY_CLIP_CONFIG, save_open_clip_dir
from world.verifier import CellClassifier, load_verifier, save_classifier


@dataclass
class Loader:
    setting: str  # the config key a user set
    given: Path  # what the user gave it (a file or a folder)
    file: Path  # the weights file the damages are applied to
    load: Callable[[], object]


def _state(file: Path) -> tuple[dict, bool]:
    """(flat state, whether it was wrapped in {"state_dict": ...})"""
    if file.suffix == ".safetensors":
        return load_file(str(file)), False
    raw = torch.load(str(file), weights_only=True)
    return (raw["state_dict"], True) if "state_dict" in raw else (raw, False)


def _write(file: Path, state: dict, wrapped: bool) -> None:
    if file.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    else:
        torch.save({"state_dict": state} if wrapped else state, file)


def _rewrite(file: Path, change: Callable[[str, torch.Tensor], torch.Tensor]) -> None:
    state, wrapped = _state(file)
    _write(file, {k: change(k, v) for k, v in state.items()}, wrapped)


def _nan_first_weight(file: Path) -> None:
    state, _ = _state(file)
    first = next(k for k in sorted(state) if k.endswith(".weight") and state[k].is_floating_point())
    _rewrite(file, lambda k, v: torch.full_like(v, float("nan")) if k == first else v)


DAMAGES = {
    "missing": lambda f: f.unlink(),
    "empty": lambda f: f.write_bytes(b""),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]),
    # Every tensor one row longer: weights of another architecture under the same names.
    "wrong_architecture": lambda f: _rewrite(f, lambda k, v: torch.cat([v, v[:1]]) if v.ndim and v.is_floating_point() else v),
    "wrong_dtype": lambda f: _rewrite(f, lambda k, v: (v * 100).to(torch.int32) if v.is_floating_point() else v),
    "nan": _nan_first_weight,
}


def _clip_file(tmp: Path, arch: str, name: str) -> Path:
    from value.tiny import tiny_open_clip

    path = tmp / name
    state = {k: v.contiguous() for k, v in tiny_open_clip(1).state_dict().items()}
    _write(path, state, wrapped=path.suffix != ".safetensors")
    return path


def _loaders(tmp: Path, tiny_arch: str, hf_clip_dir: Path, sd3_dir: Path) -> dict[str, Loader]:
    from value.tiny import tiny_open_clip

    safetensors_clip = _clip_file(tmp, tiny_arch, "clip.safetensors")
    hps = _clip_file(tmp, tiny_arch, "HPS_v2.1_compressed.pt")
    hub = save_open_clip_dir(tiny_open_clip(1), TINY_CLIP_CONFIG, str(tmp / "dfn"))
    head = tmp / "head.pth"
    dims = (TINY_CLIP_CONFIG["embed_dim"], 16, 8, 8, 4, 1)
    torch.save({f"layers.{i}.{p}": (torch.randn(dims[n + 1], dims[n]) if p == "weight" else torch.zeros(dims[n + 1]))
                for n, i in enumerate((0, 2, 4, 6, 7)) for p in ("weight", "bias")}, head)
    model_dir = tmp / "sd3"
    shutil.copytree(sd3_dir, model_dir)
    verifier = tmp / "verifier"
    verifier.mkdir()
    save_classifier(CellClassifier(), verifier)

    from diffusion.sd3 import SD3FlowModel

    backbone = SD3FlowModel.from_pretrained(str(sd3_dir), max_sequence_length=8)
    reward = tiny_clip_reward()
    g = torch.Generator().manual_seed(0)
    probe = [torch.rand(6, 3, 16, 16, generator=g) for _ in range(2)]
    value_dir = tmp / "value"
    save_stitched(stitched_from_fit(backbone, reward, probe, max_j=2), value_dir, {"backbone": {}, "reward": {}})

    def reward_loader(setting, given, file, **cfg):
        return Loader(setting, given, file, lambda: build_reward_model(RewardConfig(**cfg)))

    return {
        "open_clip file": reward_loader("reward.path", safetensors_clip, safetensors_clip,
                                        kind="open_clip", arch=tiny_arch, path=str(safetensors_clip)),
        "open_clip hub folder": reward_loader("reward.path", hub, hub / "open_clip_model.safetensors",
                                              kind="open_clip", path=str(hub)),
        "HPSv2 .pt": reward_loader("reward.path", hps, hps, kind="hpsv2", arch=tiny_arch, path=str(hps)),
        "transformers CLIP folder": reward_loader("reward.path", hf_clip_dir, hf_clip_dir / "model.safetensors",
                                                  kind="transformers_clip", path=str(hf_clip_dir)),
        "aesthetic head": reward_loader("reward.head_path", head, head, kind="aesthetic", arch=tiny_arch,
                                        path=str(safetensors_clip), head_path=str(head)),
        "diffusers model folder": Loader("model.path", model_dir, model_dir / "transformer" / "diffusion_pytorch_model.safetensors",
                                         lambda: build_flow_model(ModelConfig(family="sd3", path=str(model_dir), max_sequence_length=8))),
        "stitched value": Loader("rollout.value.path", value_dir, value_dir / WEIGHTS,
                                 lambda: load_stitched(value_dir, backbone, reward, setting="rollout.value.path")),
        "world verifier": Loader("eval.verifier", verifier, verifier / "verifier.safetensors", lambda: load_verifier(verifier)),
    }


LOADERS = ("open_clip file", "open_clip hub folder", "HPSv2 .pt", "transformers CLIP folder", "aesthetic head",
           "diffusers model folder", "stitched value", "world verifier")


@pytest.fixture
def loaders(tmp_path, tiny_arch, hf_clip_dir, sd3_dir):
    return _loaders(tmp_path, tiny_arch, hf_clip_dir, sd3_dir)


@pytest.mark.parametrize("loader", LOADERS)
def test_undamaged_files_load(loaders, loader):
    assert loaders[loader].load() is not None


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("loader", LOADERS)
def test_a_damaged_file_is_refused_naming_the_setting_and_the_path(loaders, loader, damage):
    case = loaders[loader]
    DAMAGES[damage](case.file)
    with pytest.raises((FileNotFoundError, ValueError)) as err:
        case.load()
    first = str(err.value).splitlines()[0]
    print(f"{loader} / {damage}: {first}")
    assert case.setting in first and str(case.given) in first, first


def test_a_transformers_clip_without_tokenizer_is_refused(hf_clip_dir):
    for f in hf_clip_dir.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            f.unlink()
    with pytest.raises(ValueError, match="reward.tokenizer_path") as err:
        build_reward_model(RewardConfig(kind="transformers_clip", path=str(hf_clip_dir)))
    assert str(hf_clip_dir) in str(err.value)
