"""A CLIP image tower that can be cut before block j: what stitching replaces and what it keeps.

Block indices are 1-based as in StitchVM: `tokens_at(pixels, j)` is what enters block j, and
`tail(tokens, j)` runs blocks j..L and the pooling head. Tokens are the full sequence
(B, num_prefix_tokens + gh * gw, width), class token first.

For j = 1 the tokens are the patch embeddings with the class embedding prepended, *before* the
positional embedding and the pre-norm: a stitch replaces the patch embedding and the tail adds the
positional embedding itself, so the stitched grid need not carry CLIP's positions.
"""

from abc import ABC, abstractmethod

import torch
from torch import nn


class VisionTower(nn.Module, ABC):
    @abstractmethod
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, S, S) -> image embedding (B, E), projected and not L2-normalised."""

    @abstractmethod
    def tokens_at(self, pixels: torch.Tensor, j: int) -> torch.Tensor:
        """The tokens entering block j (1-based): (B, P + N, width)."""

    @abstractmethod
    def run_from(self, tokens: torch.Tensor, j: int) -> torch.Tensor:
        """Run blocks j..L on `tokens_at(., j)`-shaped tokens -> the last block's tokens (B, P + N, width)."""

    @abstractmethod
    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """The last block's tokens -> image embedding (B, E): the tower's own pooling and projection."""

    def tail(self, tokens: torch.Tensor, j: int) -> torch.Tensor:
        """Run blocks j..L on `tokens_at(., j)`-shaped tokens -> image embedding (B, E)."""
        return self.pool(self.run_from(tokens, j))

    @property
    @abstractmethod
    def num_blocks(self) -> int: ...

    @property
    @abstractmethod
    def width(self) -> int: ...

    @property
    @abstractmethod
    def grid(self) -> tuple[int, int]:
        """The patch grid (gh, gw) of the tokens after the prefix."""

    num_prefix_tokens: int = 1  # the class token

    def _check_block(self, j: int) -> None:
        if not 1 <= j <= self.num_blocks:
            raise ValueError(f"block j={j} is outside 1..{self.num_blocks} (the image tower's blocks)")


class OpenCLIPVisionTower(VisionTower):
    """open_clip's `VisionTransformer` (OpenAI CLIP, DFN, HPSv2, LAION ViTs) with class-token pooling."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        if visual.attn_pool is not None or getattr(visual, "pool_type", "tok") != "tok":
            raise ValueError("only class-token pooled open_clip ViTs are supported (no attention pooling)")
        self.visual = visual
        self._batch_first = getattr(visual.transformer, "batch_first", True)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)

    def _patches_with_class(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.visual.conv1(pixels)  # (B, W, gh, gw)
        x = x.flatten(2).transpose(1, 2)
        cls = self.visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1)

    def _blocks(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Blocks start..stop-1 (0-based) of the residual stack."""
        if not self._batch_first:
            x = x.transpose(0, 1)
        for block in self.visual.transformer.resblocks[start:stop]:
            x = block(x)
        return x if self._batch_first else x.transpose(0, 1)

    def tokens_at(self, pixels: torch.Tensor, j: int) -> torch.Tensor:
        self._check_block(j)
        x = self._patches_with_class(pixels)
        if j == 1:
            return x
        x = self.visual.ln_pre(x + self.visual.positional_embedding.to(x.dtype))
        return self._blocks(x, 0, j - 1)

    def run_from(self, tokens: torch.Tensor, j: int) -> torch.Tensor:
        self._check_block(j)
        x = tokens
        if j == 1:
            x = self.visual.ln_pre(x + self.visual.positional_embedding.to(x.dtype))
        return self._blocks(x, j - 1, self.num_blocks)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.visual._pool(tokens)
        return pooled @ self.visual.proj if self.visual.proj is not None else pooled

    @property
    def num_blocks(self) -> int:
        return len(self.visual.transformer.resblocks)

    @property
    def width(self) -> int:
        return self.visual.class_embedding.shape[0]

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.visual.grid_size)


class HFCLIPVisionTower(VisionTower):
    """transformers' `CLIPModel` image side (`vision_model` + `visual_projection`)."""

    def __init__(self, vision_model: nn.Module, visual_projection: nn.Module):
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = visual_projection

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(self.vision_model(pixel_values=pixels).pooler_output)

    def _patches_with_class(self, pixels: torch.Tensor) -> torch.Tensor:
        emb = self.vision_model.embeddings
        x = emb.patch_embedding(pixels.to(emb.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        return torch.cat([emb.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1), x], dim=1)

    def _embed_positions(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.vision_model.embeddings
        return self.vision_model.pre_layrnorm(x + emb.position_embedding(emb.position_ids))

    def _blocks(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for layer in self.vision_model.encoder.layers[start:stop]:
            x = layer(x, None)
        return x

    def tokens_at(self, pixels: torch.Tensor, j: int) -> torch.Tensor:
        self._check_block(j)
        x = self._patches_with_class(pixels)
        return x if j == 1 else self._blocks(self._embed_positions(x), 0, j - 1)

    def run_from(self, tokens: torch.Tensor, j: int) -> torch.Tensor:
        self._check_block(j)
        x = self._embed_positions(tokens) if j == 1 else tokens
        return self._blocks(x, j - 1, self.num_blocks)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(self.vision_model.post_layernorm(tokens[:, 0]))

    @property
    def num_blocks(self) -> int:
        return len(self.vision_model.encoder.layers)

    @property
    def width(self) -> int:
        return self.vision_model.config.hidden_size

    @property
    def grid(self) -> tuple[int, int]:
        n = self.vision_model.config.image_size // self.vision_model.config.patch_size
        return (n, n)
