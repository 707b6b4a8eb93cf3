"""The tiny world's VAE: a diffusers `AutoencoderKL`, 32x32x3 images <-> 8x8x4 latents (factor 4)."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from world.optim import one_cycle, take_step
from world.scenes import DigitBank, render_batch
from world.verifier import random_scenes


def new_vae(seed: int) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        mid_block_add_attention=False,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def train_vae(bank: DigitBank, *, seed: int, steps: int, lr: float, batch: int = 32, kl_weight: float = 1e-6,
              progress=None) -> AutoencoderKL:
    """Reconstruction (L1 + MSE) with a small KL term, on fresh random training scenes every step.

    Afterwards the latent statistics set `shift_factor` and `scaling_factor` so that the scaled latents
    of training scenes have mean 0 and std 1, as SD3's do.
    """
    rng = np.random.default_rng(seed)
    vae = new_vae(seed)
    opt, sched = one_cycle(vae.parameters(), lr=lr, steps=steps)
    vae.train()
    for _ in range(steps):
        x = render_batch(random_scenes(batch, rng, empty_prob=0.4), bank, "train", rng) * 2 - 1
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + kl_weight * posterior.kl().mean()
        take_step(loss, opt, sched, progress)
    vae.eval()
    with torch.no_grad():
        x = render_batch(random_scenes(512, rng, empty_prob=0.4), bank, "train", rng) * 2 - 1
        z = vae.encode(x).latent_dist.mean
    vae.register_to_config(shift_factor=z.mean().item(), scaling_factor=1.0 / z.std().item())
    return vae


@torch.no_grad()
def round_trip(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Encode (posterior mean) and decode; images (B, 3, H, W) in [0, 1] -> the same."""
    return ((vae.decode(vae.encode(images * 2 - 1).latent_dist.mean).sample + 1) / 2).clamp(0, 1)


@torch.no_grad()
def psnr_db(vae: AutoencoderKL, bank: DigitBank, split: str, n: int, seed: int) -> float:
    """Mean PSNR (dB) of encode-mean -> decode on `n` scenes of `split`, images in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = render_batch(random_scenes(n, rng, empty_prob=0.4), bank, split, rng)
    recon = round_trip(vae, x)
    mse = ((recon - x) ** 2).flatten(1).mean(1)
    return float(np.mean([10 * math.log10(1.0 / max(m, 1e-10)) for m in mse.tolist()]))
