"""`RewardModel`: images in [0, 1] + prompts -> scores (B,), differentiable, and cuttable at block j.

Every reward here is an image tower followed by a head on its embedding (a text-similarity head for
CLIP score and HPSv2, an MLP for the aesthetic predictor), so

    model(images, prompts) == score_embedding(tail(tokens_at(preprocess(images), j), j), prompts)

for every block j: stitching swaps `tokens_at` for a map from diffusion features and keeps the rest.
"""

from abc import ABC, abstractmethod

import torch
from torch import nn

from value.image_transform import ImageTransform
from value.vision_tower import VisionTower


class RewardModel(nn.Module, ABC):
    tower: VisionTower
    transform: ImageTransform

    def forward(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1], B prompts -> scores (B,)."""
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts; give one prompt per image")
        return self.score_embedding(self.tower.encode(self.preprocess(images)), prompts)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the tower's normalised input (B, 3, S, S)."""
        return self.transform(images.to(self.dtype))

    def tokens_at(self, pixels: torch.Tensor, j: int) -> torch.Tensor:
        return self.tower.tokens_at(pixels, j)

    def tail(self, tokens: torch.Tensor, j: int) -> torch.Tensor:
        return self.tower.tail(tokens, j)

    @abstractmethod
    def score_embedding(self, image_embeds: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Image embeddings (B, E) from the tower, B prompts -> scores (B,)."""

    @property
    def dtype(self) -> torch.dtype:
        return next(self.tower.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.tower.parameters()).device
