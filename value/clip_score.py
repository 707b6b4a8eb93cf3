"""CLIP score: scale * cos(image embedding, text embedding), from open_clip or transformers weights.

Text embeddings are cached per prompt (the text tower is frozen), so scoring a batch costs one image
tower pass. HPSv2 is this same score on its finetuned ViT-H-14 (see `value.hpsv2`).
"""

from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel, CLIPTokenizer

from diffusion.model_dir import check_config_matches_weights
from diffusion.weights_file import check_finite
from value.image_transform import ImageTransform
from value.open_clip_checkpoint import load_open_clip
from value.reward_model import RewardModel
from value.text_tower import HFCLIPText, OpenCLIPText
from value.vision_tower import HFCLIPVisionTower, OpenCLIPVisionTower, VisionTower


class CLIPScore(RewardModel):
    """scale: multiplies the cosine (1 for HPSv2's convention; 100 for the common "CLIP score")."""

    def __init__(self, tower: VisionTower, text: nn.Module, transform: ImageTransform, *, scale: float = 1.0):
        super().__init__()
        self.tower = tower
        self.text = text
        self.transform = transform
        self.scale = scale
        self._text_cache: dict[str, torch.Tensor] = {}

    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """(B, E) L2-normalised, computed once per distinct prompt and kept on the CPU."""
        missing = sorted({p for p in prompts if p not in self._text_cache})
        if missing:
            for prompt, emb in zip(missing, self.text(missing).float().cpu(), strict=True):
                self._text_cache[prompt] = emb
        return torch.stack([self._text_cache[p] for p in prompts])

    def score_embedding(self, image_embeds: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        text = self.text_embeddings(prompts).to(image_embeds.device, image_embeds.dtype)
        return self.scale * (F.normalize(image_embeds, dim=-1) * text).sum(-1)

    @classmethod
    def from_open_clip(cls, arch: str, path: str, *, scale: float = 1.0, resize_mode: str | None = None) -> "CLIPScore":
        model, transform = load_open_clip(arch, path, resize_mode=resize_mode)
        name = f"local-dir:{Path(path).expanduser()}" if Path(path).expanduser().is_dir() else arch
        return cls.from_open_clip_model(model, open_clip.get_tokenizer(name), transform, scale=scale)

    @classmethod
    def from_open_clip_model(cls, model: nn.Module, tokenizer, transform: ImageTransform, *, scale: float = 1.0):
        model.eval().requires_grad_(False)
        return cls(OpenCLIPVisionTower(model.visual), OpenCLIPText(model, tokenizer), transform, scale=scale)

    @classmethod
    def from_transformers(cls, path: str, *, tokenizer_path: str = "", scale: float = 1.0) -> "CLIPScore":
        """A transformers `CLIPModel` directory (PickScore-style). Its tokenizer may live elsewhere."""
        model = load_hf_clip(path)
        tokenizer_dir = tokenizer_path or path
        try:
            tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        except (OSError, ValueError, TypeError) as err:
            raise FileNotFoundError(
                f"no CLIP tokenizer in {tokenizer_dir!r} ({err}); set reward.tokenizer_path to the directory "
                "holding tokenizer.json or vocab.json + merges.txt"
            ) from err
        # transformers 5 returns an almost empty tokenizer from a folder without tokenizer files instead of
        # raising: every word reads as the unknown token, so prompts differ only in length and score alike.
        probe = tokenizer(["a red seven", "two blue threes", "a photo of a dog"], add_special_tokens=False)["input_ids"]
        if len({i for ids in probe for i in ids} - {tokenizer.unk_token_id}) < 3:
            raise ValueError(
                f"the CLIP tokenizer read from {tokenizer_dir!r} reads the words of distinct prompts as unknown (no vocab.json + "
                "merges.txt or tokenizer.json there?); set reward.tokenizer_path to the directory that holds them"
            )
        transform = ImageTransform(size=model.config.vision_config.image_size)
        tower = HFCLIPVisionTower(model.vision_model, model.visual_projection)
        return cls(tower, HFCLIPText(model, tokenizer), transform, scale=scale)


def load_hf_clip(path: str) -> CLIPModel:
    """`CLIPModel.from_pretrained` from a local directory, failing (not warning) on missing weights."""
    root = Path(path).expanduser()
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"reward.path: {path!r} has no config.json; expected a transformers CLIPModel directory")
    check_config_matches_weights(root, library="transformers", class_name="CLIPModel", what="reward.path")
    try:
        model, info = CLIPModel.from_pretrained(str(root), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise ValueError(f"reward.path: {path!r} is not a loadable CLIPModel directory: {err}") from err
    missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
    mismatched = info.get("mismatched_keys", [])
    if missing or unexpected or mismatched:
        raise ValueError(
            f"reward.path: {path!r} does not match its config.json: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}, mismatched shapes {list(mismatched)[:3]}"
        )
    check_finite(model, what="reward.path", path=path)
    return model.eval().requires_grad_(False)
