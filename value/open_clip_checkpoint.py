"""Building an open_clip model from local weights, with the checks the real files need.

Two on-disk forms: an architecture name plus one weights file (OpenAI CLIP converted to safetensors,
HPSv2's {"state_dict": ...} .pt, any open_clip state dict), or a directory in open_clip's hub layout
(`open_clip_config.json` with `model_cfg` and `preprocess_cfg`, plus the weights; DFN ships this way).
OpenAI checkpoints need a `-quickgelu` architecture name: the plain name builds GELU and loads the
weights without complaint, silently wrong.
"""

import difflib
from pathlib import Path

import open_clip
from torch import nn

from diffusion.weights_file import check_finite, check_weights_path, read_header
from value.image_transform import OPENAI_MEAN, OPENAI_STD, ImageTransform


def load_open_clip(arch: str, path: str, *, resize_mode: str | None = None) -> tuple[nn.Module, ImageTransform]:
    """(model in eval mode, its image transform); `resize_mode` overrides the checkpoint's own."""
    source = Path(path).expanduser()
    if source.is_dir():
        if not (source / "open_clip_config.json").is_file():
            raise FileNotFoundError(
                f"reward.path: {path!r} is a directory without open_clip_config.json; give a weights file "
                "with reward.arch, or a directory in open_clip's hub layout"
            )
        if not any(f.suffix in (".safetensors", ".bin", ".pth") for f in source.iterdir()):
            # open_clip would warn and build random weights: every score silently meaningless.
            raise FileNotFoundError(
                f"reward.path: {path!r} holds open_clip_config.json but no weights file (open_clip_model.safetensors "
                "or open_clip_pytorch_model.bin); copy the weights into it"
            )
        check_weights_path(source, what="reward.path")
        model = _create(f"local-dir:{source}", pretrained=None, path=path, arch="(from open_clip_config.json)")
    else:
        if arch not in open_clip.list_models():
            near = difflib.get_close_matches(arch, open_clip.list_models(), n=3)
            raise ValueError(f"reward.arch={arch!r} is not an open_clip architecture; did you mean one of {near}?")
        if not source.is_file():
            raise FileNotFoundError(f"reward.path: {path!r}: no such file or directory")
        read_header(source, what="reward.path")
        model = _create(arch, pretrained=str(source), path=path, arch=arch)
    check_finite(model, what="reward.path", path=path)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    transform = ImageTransform(
        size=size,
        mean=tuple(cfg.get("mean", OPENAI_MEAN)),
        std=tuple(cfg.get("std", OPENAI_STD)),
        resize_mode=resize_mode or cfg.get("resize_mode", "shortest"),
    )
    return model.eval(), transform


def _create(name: str, *, pretrained: str | None, path: str, arch: str) -> nn.Module:
    try:
        return open_clip.create_model(name, pretrained=pretrained, weights_only=True)
    # open_clip reports a mismatch as a RuntimeError from load_state_dict, or an AssertionError or
    # KeyError from its position-embedding resizing, depending on which tensor disagrees first.
    except (RuntimeError, AssertionError, KeyError, ValueError) as err:
        message = str(err) or type(err).__name__
        if "TorchScript" in message or "weights_only" in message:
            fix = "it is a TorchScript or pickled archive; convert it to a state dict in .safetensors"
        else:
            fix = "check that reward.arch names the architecture the checkpoint was trained with"
        raise ValueError(
            f"reward.path: {path!r} does not load into open_clip {arch!r}: {message.splitlines()[0][:400]}. Fix: {fix}"
        ) from err
