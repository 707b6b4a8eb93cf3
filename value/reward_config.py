"""`RewardConfig` (mirrored by configs/reward/*.yaml) and the one function that builds a reward from it."""

from dataclasses import dataclass

from value.aesthetic import AestheticScore
from value.clip_score import CLIPScore
from value.hpsv2 import load_hpsv2
from value.image_transform import RESIZE_MODES, ImageTransform
from value.reward_model import RewardModel
from value.tiny import TINY_CLIP_CONFIG, tiny_open_clip, tiny_tokenizer

REWARD_KINDS = ("open_clip", "transformers_clip", "hpsv2", "aesthetic", "random_tiny_clip")


@dataclass(kw_only=True)
class RewardConfig:
    """kind: open_clip | transformers_clip | hpsv2 | aesthetic | random_tiny_clip (untrained, for smoke runs).

    arch: open_clip architecture name (ignored when `path` is an open_clip hub-layout directory).
    path: weights file or directory. head_path: the aesthetic MLP's weights. tokenizer_path: for a
    transformers CLIP whose tokenizer lives in another directory. resize_mode: "" keeps the checkpoint's.
    scale: multiplies the cosine of CLIP-like scores.
    """

    kind: str = "open_clip"
    arch: str = ""
    path: str = ""
    head_path: str = ""
    tokenizer_path: str = ""
    resize_mode: str = ""
    scale: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.kind not in REWARD_KINDS:
            raise ValueError(f"reward.kind={self.kind!r} is not one of {REWARD_KINDS}")
        if self.resize_mode and self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"reward.resize_mode={self.resize_mode!r} is not one of {RESIZE_MODES} (or '' for the checkpoint's)")
        if self.kind != "random_tiny_clip" and not self.path:
            raise ValueError(f"reward.path is empty; reward.kind={self.kind!r} needs the checkpoint's location")
        if self.kind == "aesthetic" and not self.head_path:
            raise ValueError("reward.head_path is empty; the aesthetic reward needs its MLP head's weights file")


def build_reward_model(cfg: RewardConfig) -> RewardModel:
    match cfg.kind:
        case "open_clip":
            return CLIPScore.from_open_clip(cfg.arch, cfg.path, scale=cfg.scale, resize_mode=cfg.resize_mode or None)
        case "transformers_clip":
            return CLIPScore.from_transformers(cfg.path, tokenizer_path=cfg.tokenizer_path, scale=cfg.scale)
        case "hpsv2":
            return load_hpsv2(cfg.path, arch=cfg.arch or "ViT-H-14")
        case "aesthetic":
            return AestheticScore.from_files(arch=cfg.arch or "ViT-L-14-quickgelu", clip_path=cfg.path, head_path=cfg.head_path)
        case "random_tiny_clip":
            size = TINY_CLIP_CONFIG["vision_cfg"]["image_size"]
            return CLIPScore.from_open_clip_model(
                tiny_open_clip(cfg.seed), tiny_tokenizer(), ImageTransform(size=size), scale=cfg.scale
            )
        case _:
            raise AssertionError(f"unreachable: kind {cfg.kind!r} passed validation")
