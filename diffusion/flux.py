"""FLUX.1 (dev / schnell) through diffusers' `FluxTransformer2DModel`.

The transformer reads 2x2-packed latents (B, h/2 * w/2, 4C); this adapter packs and unpacks so that
callers see (B, C, h, w) like every other `FlowModel`. FLUX.1-dev is guidance-distilled: the guidance
scale enters as an embedding (`guidance`), not as a second CFG branch.
"""

import torch
from diffusers import FluxPipeline

from diffusion.conditioning import Conditioning
from diffusion.flow_model import FlowModel
from diffusion.model_dir import load_pipeline
from diffusion.schedule import flow_schedule, flux_mu


class FluxFlowModel(FlowModel):
    """guidance: the distilled guidance scale fed to models with `guidance_embeds` (3.5 for dev)."""

    def __init__(self, pipeline: FluxPipeline, *, guidance: float = 3.5, max_sequence_length: int = 512):
        super().__init__()
        self.pipeline = pipeline
        self.guidance = guidance
        self.max_sequence_length = max_sequence_length
        self.transformer = pipeline.transformer
        self.vae = pipeline.vae.requires_grad_(False).eval()
        self.text_encoders = torch.nn.ModuleList(
            [e.requires_grad_(False).eval() for e in (pipeline.text_encoder, pipeline.text_encoder_2)]
        )

    @classmethod
    def from_pretrained(
        cls, path: str, *, dtype=torch.float32, guidance: float = 3.5, max_sequence_length: int = 512
    ) -> "FluxFlowModel":
        pipeline = load_pipeline(FluxPipeline, path, family="flux", dtype=dtype)
        return cls(pipeline, guidance=guidance, max_sequence_length=max_sequence_length)

    def save_pretrained(self, path: str) -> None:
        self.pipeline.save_pretrained(path)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> Conditioning:
        embeds, pooled, _ = self.pipeline.encode_prompt(
            prompt=list(prompts),
            prompt_2=None,
            device=self.transformer.device,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(embeds.to(self.transformer.dtype), pooled.to(self.transformer.dtype))

    # ---- the packed-token stream --------------------------------------------------------
    def _embed(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning):
        """The preamble of FluxTransformer2DModel.forward: packed image tokens, text tokens, temb, rotary.
        Kept in step with `velocity` by the test that compares `features` against a hooked full forward."""
        B, C, h, w = z.shape
        tr = self.transformer
        x = tr.x_embedder(FluxPipeline._pack_latents(z, B, C, h, w))
        if tr.config.guidance_embeds:
            g = torch.full_like(t, self.guidance)
            temb = tr.time_text_embed(t * 1000, g * 1000, cond.pooled)
        else:
            temb = tr.time_text_embed(t * 1000, cond.pooled)
        context = tr.context_embedder(cond.prompt_embeds)
        img_ids = FluxPipeline._prepare_latent_image_ids(B, h // 2, w // 2, z.device, z.dtype)
        txt_ids = torch.zeros(cond.prompt_embeds.shape[1], 3, device=z.device, dtype=z.dtype)
        rotary = tr.pos_embed(torch.cat([txt_ids, img_ids]))
        return x, context, temb, rotary

    def _blocks(self):
        return [*self.transformer.transformer_blocks, *self.transformer.single_transformer_blocks]

    def velocity(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        B, C, h, w = z.shape
        tr = self.transformer
        guidance = torch.full_like(t, self.guidance) if tr.config.guidance_embeds else None
        packed = tr(
            hidden_states=FluxPipeline._pack_latents(z, B, C, h, w),
            timestep=t,  # FLUX's transformer takes sigma and multiplies by 1000 itself
            guidance=guidance,
            pooled_projections=cond.pooled,
            encoder_hidden_states=cond.prompt_embeds,
            txt_ids=torch.zeros(cond.prompt_embeds.shape[1], 3, device=z.device, dtype=z.dtype),
            img_ids=FluxPipeline._prepare_latent_image_ids(B, h // 2, w // 2, z.device, z.dtype),
            return_dict=False,
        )[0]  # (B, h/2 * w/2, 4C)
        f = self.vae_scale_factor
        return FluxPipeline._unpack_latents(packed, h * f, w * f, f)

    def block_features(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, *, upto: int) -> list[torch.Tensor]:
        """Blocks count the 19 double-stream blocks first, then the 38 single-stream ones (FLUX.1-dev)."""
        B, _, h, w = z.shape
        self._check_upto(upto)
        x, context, temb, rotary = self._embed(z, t, cond)
        gh, gw = self.token_grid(h, w)
        out = []
        for block in self._blocks()[:upto]:
            context, x = block(hidden_states=x, encoder_hidden_states=context, temb=temb, image_rotary_emb=rotary)
            out.append(x.transpose(1, 2).reshape(B, -1, gh, gw))
        return out

    @property
    def num_blocks(self) -> int:
        return len(self._blocks())

    @property
    def feature_dim(self) -> int:
        return self.transformer.inner_dim

    def token_grid(self, h: int, w: int) -> tuple[int, int]:
        return (h // 2, w // 2)

    def schedule(self, num_steps: int, h: int, w: int) -> torch.Tensor:
        cfg = self.pipeline.scheduler.config
        if not cfg.get("use_dynamic_shifting", False):
            return flow_schedule(num_steps, shift=cfg.shift)
        mu = flux_mu(
            (h // 2) * (w // 2),
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        return flow_schedule(num_steps, mu=mu)
