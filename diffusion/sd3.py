"""The SD3 family (SD3.5 Medium / Large and the tiny world's MMDiT): one class, different configs.

Reads a diffusers `StableDiffusion3Pipeline` directory; prompts are encoded by the pipeline's own
`encode_prompt` (CLIP-L + CLIP-G hidden states, T5 tokens or zeros when there is no T5).
"""

import torch
from diffusers import StableDiffusion3Pipeline

from diffusion.conditioning import Conditioning
from diffusion.flow_model import FlowModel
from diffusion.model_dir import load_pipeline
from diffusion.schedule import flow_schedule


class SD3FlowModel(FlowModel):
    """A flow model around an `SD3Transformer2DModel`.

    max_sequence_length: T5 tokens (the pipeline's default 256; zeros of that length when the
    pipeline has no T5, so small worlds use a short one).
    """

    def __init__(self, pipeline: StableDiffusion3Pipeline, *, max_sequence_length: int = 256):
        super().__init__()
        self.pipeline = pipeline
        self.max_sequence_length = max_sequence_length
        self.transformer = pipeline.transformer
        self.vae = pipeline.vae.requires_grad_(False).eval()
        self.text_encoders = torch.nn.ModuleList(
            [e.requires_grad_(False).eval() for e in (pipeline.text_encoder, pipeline.text_encoder_2, pipeline.text_encoder_3) if e is not None]
        )

    @classmethod
    def from_pretrained(cls, path: str, *, dtype=torch.float32, max_sequence_length: int = 256) -> "SD3FlowModel":
        pipeline = load_pipeline(StableDiffusion3Pipeline, path, family="sd3", dtype=dtype)
        return cls(pipeline, max_sequence_length=max_sequence_length)

    def save_pretrained(self, path: str) -> None:
        self.pipeline.save_pretrained(path)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> Conditioning:
        embeds, _, pooled, _ = self.pipeline.encode_prompt(
            prompt=list(prompts),
            prompt_2=None,
            prompt_3=None,
            device=self.transformer.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(embeds.to(self.transformer.dtype), pooled.to(self.transformer.dtype))

    def velocity(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.transformer(
            hidden_states=z,
            encoder_hidden_states=cond.prompt_embeds,
            pooled_projections=cond.pooled,
            timestep=t * 1000,  # diffusers' SD3 timestep is 1000 * sigma
            return_dict=False,
        )[0]

    def block_features(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, *, upto: int) -> list[torch.Tensor]:
        B, _, h, w = z.shape
        self._check_upto(upto)
        tr = self.transformer
        # The same preamble as SD3Transformer2DModel.forward, then only the first `upto` blocks.
        x = tr.pos_embed(z).contiguous()
        temb = tr.time_text_embed(t * 1000, cond.pooled)
        context = tr.context_embedder(cond.prompt_embeds)
        gh, gw = self.token_grid(h, w)
        out = []
        for block in tr.transformer_blocks[:upto]:
            context, x = block(hidden_states=x, encoder_hidden_states=context, temb=temb)
            out.append(x.transpose(1, 2).reshape(B, -1, gh, gw))
        return out

    @property
    def num_blocks(self) -> int:
        return len(self.transformer.transformer_blocks)

    @property
    def feature_dim(self) -> int:
        return self.transformer.inner_dim

    def token_grid(self, h: int, w: int) -> tuple[int, int]:
        p = self.transformer.config.patch_size
        return (h // p, w // p)

    def schedule(self, num_steps: int, h: int, w: int) -> torch.Tensor:
        return flow_schedule(num_steps, shift=self.pipeline.scheduler.config.shift)
