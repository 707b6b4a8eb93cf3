"""The text conditioning a flow model reads, as a typed batch."""

from dataclasses import dataclass

import torch


@dataclass
class Conditioning:
    """Encoded prompts for a batch of B samples.

    prompt_embeds: (B, L, D) token embeddings the transformer attends to.
    pooled: (B, P) pooled text embedding that enters the timestep embedding.
    """

    prompt_embeds: torch.Tensor
    pooled: torch.Tensor

    def __post_init__(self):
        if self.prompt_embeds.shape[0] != self.pooled.shape[0]:
            raise ValueError(
                f"prompt_embeds has batch {self.prompt_embeds.shape[0]} but pooled has {self.pooled.shape[0]}"
            )

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]

    def to(self, device=None, dtype=None) -> "Conditioning":
        return Conditioning(self.prompt_embeds.to(device, dtype), self.pooled.to(device, dtype))

    def index(self, idx) -> "Conditioning":
        """Rows `idx` (an int slice, a list or a LongTensor) of the batch."""
        return Conditioning(self.prompt_embeds[idx], self.pooled[idx])

    def repeat_interleave(self, n: int) -> "Conditioning":
        """Each row n times in a row: prompts (p0, p1) -> (p0, p0, p1, p1) for n = 2 (a group per prompt)."""
        return Conditioning(self.prompt_embeds.repeat_interleave(n, 0), self.pooled.repeat_interleave(n, 0))

    def split(self, size: int) -> list["Conditioning"]:
        return [
            Conditioning(e, p) for e, p in zip(self.prompt_embeds.split(size), self.pooled.split(size), strict=True)
        ]

    @staticmethod
    def concat(items: list["Conditioning"]) -> "Conditioning":
        return Conditioning(
            torch.cat([c.prompt_embeds for c in items]), torch.cat([c.pooled for c in items])
        )
