"""A diffusion-native latent reward model (DiNa-LRM): R(z_t, t, prompt) read straight from a noisy latent.

The generator's first k MMDiT blocks (a copy, LoRA on the attention projections) run on z_t with each
sample's own prompt at timestep t; their image and text tokens after a few blocks (`image_taps`,
`text_taps`, 1-based) feed `RewardHead`. Trained from preference pairs (value/preference_likelihood.py),
not distilled from a pixel reward: unlike the stitched value it needs no pixel reward at all, and its
scores are on its own scale (a utility, not the reward's).

Behind the value interface, V(z_t, t) = R(z_t, t). With `noise_levels`, each row is first pushed forward
along the noising path to every level s >= its t with one shared noise (the release scores a sampler's
clean latent at s = 0.4) and the levels' tokens are fused in one head pass (the release's ensemble).
"""

import copy
from dataclasses import dataclass, field

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import inject_adapter_in_model
from torch import nn

from diffusion.conditioning import Conditioning
from diffusion.flow_model import FlowModel
from diffusion.lora import ATTENTION_PROJECTIONS
from diffusion.prompt_cache import PromptCache
from value.latent_reward_head import RewardHead
from value.value_model import ValueModel


@dataclass(kw_only=True)
class LatentRewardConfig:
    """blocks: how many of the generator's blocks the model keeps (the release: 12 of SD3.5-M's 24);
    image_taps / text_taps: the blocks after which it reads each stream; lora_rank / lora_alpha: on the
    kept blocks' attention projections (the release: 64 / 128); width: the head's (0: the backbone's);
    noise_levels: the levels a latent is scored at (empty: its own t); noise_seed: their shared noise."""

    blocks: int = 2
    image_taps: list[int] = field(default_factory=lambda: [1, 2])
    text_taps: list[int] = field(default_factory=lambda: [1, 2])
    lora_rank: int = 16
    lora_alpha: float = 32.0
    width: int = 0
    num_queries: int = 4
    num_heads: int = 8
    noise_levels: list[float] = field(default_factory=list)
    noise_seed: int = 0

    def __post_init__(self):
        for name in ("image_taps", "text_taps"):
            taps = getattr(self, name)
            if sorted(set(taps)) != list(taps) or any(not 1 <= k <= self.blocks for k in taps):
                raise ValueError(f"latent_reward.{name}={taps} must be increasing blocks in 1..blocks={self.blocks}")
        if not self.image_taps:
            raise ValueError("latent_reward.image_taps is empty: the head needs at least one image tap")
        if any(not 0.0 <= s < 1.0 for s in self.noise_levels):
            raise ValueError(f"latent_reward.noise_levels={self.noise_levels} must lie in [0, 1)")


class MMDiTTrunk(nn.Module):
    """A copy of an SD3-family transformer's input embeddings and first `blocks` blocks. Attribute names
    are the transformer's, so LoRA keys read as the release's (`transformer_blocks.0.attn.to_q.lora_A...`)."""

    def __init__(self, transformer: nn.Module, blocks: int):
        super().__init__()
        if not hasattr(transformer, "context_embedder") or hasattr(transformer, "single_transformer_blocks"):
            raise ValueError(f"a latent reward model reads an SD3-family MMDiT; {type(transformer).__name__} is not one")
        total = len(transformer.transformer_blocks)
        if not 1 <= blocks <= total:
            raise ValueError(f"latent_reward.blocks={blocks} is outside 1..{total} (the backbone's blocks)")
        self.pos_embed = copy.deepcopy(transformer.pos_embed)
        self.time_text_embed = copy.deepcopy(transformer.time_text_embed)
        self.context_embedder = copy.deepcopy(transformer.context_embedder)
        self.transformer_blocks = copy.deepcopy(transformer.transformer_blocks[:blocks])
        self.context_pre_only = bool(getattr(transformer.transformer_blocks[blocks - 1], "context_pre_only", False))

    @property
    def dim(self) -> int:
        return self.context_embedder.out_features

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, image_taps: list[int], text_taps: list[int]):
        """z (B, C, h, w), t (B,) -> temb (B, E), image tokens [(B, N, D)] and text tokens [(B, M, D)] after
        the tapped blocks."""
        x = self.pos_embed(z)
        temb = self.time_text_embed(t * 1000, cond.pooled)  # diffusers' SD3 timestep is 1000 * sigma
        context = self.context_embedder(cond.prompt_embeds)
        image, text = [], []
        for k, block in enumerate(self.transformer_blocks, start=1):
            context, x = block(hidden_states=x, encoder_hidden_states=context, temb=temb)
            if k in image_taps:
                image.append(x)
            if k in text_taps:
                text.append(context)
        return temb, image, text


def push_forward(z: torch.Tensor, t: torch.Tensor, s: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """z_s from z_t along the noising path z_t = (1 - t) z0 + t eps, for s >= t (rows (B,)): exactly the
    conditional law of z_s given z_t, a z_t + sqrt(s^2 - (a t)^2) noise with a = (1 - s) / (1 - t)."""
    a = (1 - s) / (1 - t).clamp_min(1e-6)
    b = (s**2 - (a * t) ** 2).clamp_min(0).sqrt()
    shape = (-1,) + (1,) * (z.dim() - 1)
    return a.view(shape) * z + b.view(shape) * noise


class LatentRewardModel(ValueModel):
    """R(z_t, t, prompts) -> scores (B,). Trainable: the trunk's LoRA and the head; the generator's text
    encoders (through `backbone`, not a submodule) encode the prompts."""

    def __init__(self, backbone: FlowModel, config: LatentRewardConfig):
        super().__init__()
        self.config = config
        self.__dict__["backbone"] = backbone  # not a submodule: frozen, shared, saved elsewhere
        self.prompts = PromptCache(backbone)
        self.trunk = MMDiTTrunk(backbone.transformer, config.blocks)
        if config.text_taps and config.text_taps[-1] == config.blocks and self.trunk.context_pre_only:
            raise ValueError(f"block {config.blocks} is the backbone's last, which leaves its text tokens unfinished; "
                             "drop it from latent_reward.text_taps or keep fewer blocks")
        self.trunk.requires_grad_(False)
        inject_adapter_in_model(PeftLoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha,
                                               target_modules=list(ATTENTION_PROJECTIONS), init_lora_weights="gaussian"),
                                self.trunk)
        dim = self.trunk.dim
        self.head = RewardHead(dim, self.trunk.time_text_embed.timestep_embedder.linear_2.out_features,
                               image_taps=len(config.image_taps), text_taps=len(config.text_taps),
                               width=config.width or dim, num_queries=config.num_queries, num_heads=config.num_heads)
        self.head.to(backbone.transformer.dtype)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What training changes and a checkpoint holds: the LoRA weights and the head."""
        return {n: p for n, p in self.state_dict().items() if n.startswith("head.") or "lora_" in n}

    def _view(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning):
        temb, image, text = self.trunk(z, t, cond, self.config.image_taps, self.config.text_taps)
        return self.head.view_tokens(image, text, temb)

    def _conditioning(self, z: torch.Tensor, prompts: list[str]) -> Conditioning:
        if len(prompts) != z.shape[0]:
            raise ValueError(f"{z.shape[0]} latents but {len(prompts)} prompts; give one prompt per latent")
        return self.prompts(prompts)

    def score(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """R at the latent's own noise level: z (B, C, h, w), t (B,) -> (B,)."""
        return self.head([self._view(z, t, self._conditioning(z, prompts))])

    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        if not self.config.noise_levels:
            return self.score(z, t, prompts)
        cond = self._conditioning(z, prompts)
        noise = torch.randn(z.shape, generator=torch.Generator(z.device).manual_seed(self.config.noise_seed),
                            device=z.device, dtype=z.dtype)
        views = []
        for level in self.config.noise_levels:
            s = torch.maximum(t, torch.full_like(t, level))
            views.append(self._view(push_forward(z, t, s, noise), s, cond))
        return self.head(views)
