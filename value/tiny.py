"""Tiny, randomly initialised open_clip CLIP models in the on-disk layouts of the real checkpoints.

Used by the tests (save, load through the real adapters, compare) and as the untrained reward until
the tiny world's trained CLIP exists. Deterministic given the seed.
"""

import json
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file
from torch import nn

from value.image_transform import OPENAI_MEAN, OPENAI_STD

# The real SimpleTokenizer ships inside open_clip, so the text tower keeps its 49,408-token vocabulary.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 4, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def tiny_open_clip(seed: int = 0, config: dict = TINY_CLIP_CONFIG) -> nn.Module:
    torch.manual_seed(seed)
    return open_clip.model.CLIP(**config).eval()


def tiny_tokenizer(config: dict = TINY_CLIP_CONFIG):
    return open_clip.get_tokenizer("ViT-B-32", context_length=config["text_cfg"]["context_length"])


def save_open_clip_dir(model: nn.Module, config: dict, directory: str, *, resize_mode: str = "shortest") -> Path:
    """open_clip's hub layout (what DFN ships): open_clip_config.json + open_clip_model.safetensors."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    preprocess = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic", "resize_mode": resize_mode}
    (root / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "open_clip_model.safetensors"))
    return root
