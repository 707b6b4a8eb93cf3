"""`FlowModel`: the one interface every backbone family (SD3.5, FLUX.1, the tiny MMDiT) implements.

A flow model predicts the velocity u(z_t, t) = E[eps - z0 | z_t] of latents (B, C, h, w), with t = 0
clean and t = 1 noise. Subclasses adapt a diffusers transformer; the VAE handling is shared here
because SD3 and FLUX scale and shift latents the same way.
"""

from abc import ABC, abstractmethod

import torch
from torch import nn

from diffusion.conditioning import Conditioning


class FlowModel(nn.Module, ABC):
    """Holds `transformer` (trainable, LoRA goes here), `vae` and the text encoders (frozen)."""

    transformer: nn.Module
    vae: nn.Module
    text_encoders: nn.ModuleList

    def train(self, mode: bool = True) -> "FlowModel":
        """Only the transformer trains; the VAE and text encoders stay in eval mode (no dropout)."""
        super().train(mode)
        self.vae.eval()
        self.text_encoders.eval()
        return self

    # ---- text -----------------------------------------------------------------------------
    @abstractmethod
    def encode_prompt(self, prompts: list[str]) -> Conditioning:
        """Encode B prompts (the empty string is the null prompt used by CFG)."""

    def conditions(self, prompts: list[str], cfg_scale: float) -> tuple[Conditioning, Conditioning | None]:
        """The prompts' conditioning and, under CFG (cfg_scale != 1), the null prompt's, one row per prompt."""
        null = self.encode_prompt([""] * len(prompts)) if cfg_scale != 1.0 else None
        return self.encode_prompt(prompts), null

    def null_condition(self, cfg_scale: float) -> Conditioning | None:
        """The null prompt's conditioning under CFG, encoded once for a whole job (`.index([0] * B)` per
        batch); None without CFG."""
        return self.encode_prompt([""]) if cfg_scale != 1.0 else None

    # ---- the velocity field and its features ----------------------------------------------
    @abstractmethod
    def velocity(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """z (B, C, h, w), t (B,) in [0, 1] -> predicted velocity u (B, C, h, w)."""

    @abstractmethod
    def block_features(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, *, upto: int) -> list[torch.Tensor]:
        """Image-stream tokens after each of blocks 1..upto (1-based), in one partial pass.

        z (B, C, h, w), t (B,) -> `upto` maps (B, feature_dim, *token_grid(h, w)).
        """

    def features(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, *, upto: int) -> torch.Tensor:
        """Image-stream tokens after block `upto` (upto = 4 runs the first four blocks only): (B, D, gh, gw)."""
        return self.block_features(z, t, cond, upto=upto)[-1]

    @property
    @abstractmethod
    def num_blocks(self) -> int:
        """How many blocks `features(upto=...)` can stop after."""

    def _check_upto(self, upto: int) -> None:
        if not 1 <= upto <= self.num_blocks:
            raise ValueError(f"features(upto={upto}) is outside 1..{self.num_blocks} (the backbone's blocks)")

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """Channels of the image-stream tokens."""

    @abstractmethod
    def token_grid(self, h: int, w: int) -> tuple[int, int]:
        """The image-token grid for a latent of spatial size (h, w)."""

    @abstractmethod
    def schedule(self, num_steps: int, h: int, w: int) -> torch.Tensor:
        """The sampler's times (num_steps + 1,), from 1 down to 0, for latents of spatial size (h, w)."""

    # ---- latents <-> images ---------------------------------------------------------------
    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(C, h, w) of the latent for an image of height x width pixels."""
        f = self.vae_scale_factor
        if height % f or width % f:
            raise ValueError(f"image size {height}x{width} is not divisible by the VAE factor {f}")
        return (self.latent_channels, height // f, width // f)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> latents (B, C, H/f, W/f), the posterior mean, scaled."""
        posterior = self.vae.encode(images * 2 - 1).latent_dist
        shift = self.vae.config.shift_factor or 0.0
        return (posterior.mean - shift) * self.vae.config.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (B, C, h, w) -> images (B, 3, h*f, w*f) in [0, 1]; differentiable."""
        shift = self.vae.config.shift_factor or 0.0
        x = self.vae.decode(z / self.vae.config.scaling_factor + shift).sample
        return ((x + 1) / 2).clamp(0, 1)
