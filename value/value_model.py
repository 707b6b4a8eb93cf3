"""The value interface: V(z_t, t, prompts) estimates E[r(x0) | z_t], the reward a base-model rollout
from the noisy latent z_t reaches. Batched and differentiable in z_t; t = 0 is clean."""

from abc import ABC, abstractmethod

import torch
from torch import nn


class ValueModel(nn.Module, ABC):
    # True when the value is a function of the sampler's velocity u(z_t) (Tweedie): a guided sampler then
    # differentiates through its own denoiser pass instead of running a second one.
    reads_velocity = False

    @abstractmethod
    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """z (B, C, h, w), t (B,) in [0, 1], B prompts -> values (B,) on the reward's scale."""

    def from_velocity(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str], u: torch.Tensor) -> torch.Tensor:
        """The value when the sampler already holds u(z_t) (B, C, h, w); values that do not read it ignore it."""
        return self(z, t, prompts)
