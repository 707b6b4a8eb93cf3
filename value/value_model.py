"""The value interface: V(z_t, t, prompts) estimates E[r(x0) | z_t], the reward a base-model rollout
from the noisy latent z_t reaches. Batched and differentiable in z_t; t = 0 is clean."""

from abc import ABC, abstractmethod

import torch
from torch import nn


class ValueModel(nn.Module, ABC):
    @abstractmethod
    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """z (B, C, h, w), t (B,) in [0, 1], B prompts -> values (B,) on the reward's scale."""
