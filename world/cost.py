"""Forward FLOPs of each component, for the tiny world and for the real configs built on the meta
device from their published configs (no weights), so benchmarks can print the tiny-world ratio next to
the ratio the real models predict. Counted with torch's FlopCounterMode (matmuls and convolutions)."""

import open_clip
import torch
from diffusers import AutoencoderKL, SD3Transformer2DModel
from torch.utils.flop_counter import FlopCounterMode

# SD3.5 Medium (checkpoint_formats.md section 6) and its VAE, at 1024 px: a 128x128x16 latent.
SD35_MEDIUM_TRANSFORMER = dict(
    sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
    num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
    pos_embed_max_size=384, dual_attention_layers=tuple(range(13)), qk_norm="rms_norm",
)
SD35_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16, norm_num_groups=32,
    sample_size=1024, use_quant_conv=False, use_post_quant_conv=False,
)
SD35_TEXT_TOKENS = 77 + 256  # CLIP tokens + T5 tokens


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def transformer_flops(transformer: SD3Transformer2DModel, latent_hw: int, text_tokens: int) -> int:
    cfg, device = transformer.config, next(transformer.parameters()).device
    z = torch.zeros(1, cfg.in_channels, latent_hw, latent_hw, device=device)
    ctx = torch.zeros(1, text_tokens, cfg.joint_attention_dim, device=device)
    pooled = torch.zeros(1, cfg.pooled_projection_dim, device=device)
    t = torch.ones(1, device=device)
    return count_flops(lambda: transformer(hidden_states=z, encoder_hidden_states=ctx, pooled_projections=pooled, timestep=t))


def vae_decode_flops(vae: AutoencoderKL, latent_hw: int) -> int:
    device = next(vae.parameters()).device
    z = torch.zeros(1, vae.config.latent_channels, latent_hw, latent_hw, device=device)
    return count_flops(lambda: vae.decode(z))


def image_tower_flops(clip_model: torch.nn.Module) -> int:
    size = clip_model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    device = next(clip_model.parameters()).device
    return count_flops(lambda: clip_model.visual(torch.zeros(1, 3, size, size, device=device)))


def _proportions(backbone: int, vae: int, reward: int) -> dict:
    return {
        "backbone_forward_flops": backbone,
        "vae_decode_flops": vae,
        "reward_tower_flops": reward,
        "backbone_over_vae_decode": backbone / vae,
        "backbone_over_reward_tower": backbone / reward,
    }


def _sd35m_on_meta() -> tuple[SD3Transformer2DModel, AutoencoderKL, torch.nn.Module]:
    """SD3.5-M's transformer and VAE and CLIP ViT-L/14-336, built on the meta device (no weights)."""
    with torch.device("meta"):
        return (SD3Transformer2DModel(**SD35_MEDIUM_TRANSFORMER), AutoencoderKL(**SD35_VAE),
                open_clip.model.CLIP(**open_clip.get_model_config("ViT-L-14-336-quickgelu")))


@torch.no_grad()
def real_costs() -> dict:
    """SD3.5-M transformer and VAE decoder at 1024 px; CLIP ViT-L/14-336 and HPSv2's ViT-H-14 towers."""
    transformer, vae, clip_l = _sd35m_on_meta()
    with torch.device("meta"):
        hps = open_clip.model.CLIP(**open_clip.get_model_config("ViT-H-14"))
    backbone = transformer_flops(transformer, 128, SD35_TEXT_TOKENS)
    decode = vae_decode_flops(vae, 128)
    out = {"sd35m_clip_vitl14_336": _proportions(backbone, decode, image_tower_flops(clip_l))}
    out["sd35m_hpsv2"] = _proportions(backbone, decode, image_tower_flops(hps))
    return out


@torch.no_grad()
def sd35m_nft_costs(latent_hw: int = 64) -> dict:
    """Forward FLOPs of one SD3.5-M transformer pass (default 512 px: a 64x64x16 latent), one VAE decode
    and one CLIP ViT-L/14-336 image tower, for the NFT step-cost prediction."""
    transformer, vae, clip_l = _sd35m_on_meta()
    return {
        "backbone_forward_flops": transformer_flops(transformer, latent_hw, SD35_TEXT_TOKENS),
        "num_blocks": SD35_MEDIUM_TRANSFORMER["num_layers"],
        "vae_decode_flops": vae_decode_flops(vae, latent_hw),
        "reward_tower_flops": image_tower_flops(clip_l),
    }


@torch.no_grad()
def tiny_costs(transformer, vae, clip_model, *, latent_hw: int, text_tokens: int) -> dict:
    return _proportions(
        transformer_flops(transformer, latent_hw, text_tokens), vae_decode_flops(vae, latent_hw), image_tower_flops(clip_model)
    )
