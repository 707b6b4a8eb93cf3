"""DiNa-LRM's reward head: backbone tokens tapped after a few blocks -> one scalar per sample.

Per tap, a FiLM adapter modulates the tokens by the time embedding; the taps are concatenated and mapped
back to the head's width (image and text tokens apart); learnable queries read them through a gated
cross-attention to both and a second one to the image tokens only, an FFN follows, and the score is the
mean of the queries' scalars. Parameter names follow the released `rm_head.pt`, so that file loads as a
state dict (value/latent_reward_checkpoint.py).
"""

import torch
import torch.nn.functional as F
from torch import nn


class FiLMAdapter(nn.Module):
    """tokens (B, N, D), temb (B, E) -> (B, N, width // 4): proj((x (1 + gamma) + beta) + e_layer).

    gamma, beta come from a two-layer SiLU MLP of temb whose last layer starts at zero, so the adapter
    starts as the identity modulation; x is first mapped to the head's width when it is not D."""

    def __init__(self, dim: int, temb_dim: int, width: int):
        super().__init__()
        self.proj_in = nn.Linear(dim, width) if dim != width else nn.Identity()
        self.layer_embed = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.cond_mlp = nn.Sequential(nn.Linear(temb_dim, 2 * width), nn.SiLU(), nn.Linear(2 * width, 2 * width))
        nn.init.zeros_(self.cond_mlp[-1].weight)
        nn.init.zeros_(self.cond_mlp[-1].bias)
        self.proj = nn.Linear(width, width // 4)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.cond_mlp(temb).unsqueeze(1).chunk(2, dim=-1)
        return self.proj(self.proj_in(x) * (1 + gamma) + beta + self.layer_embed)


def _gate(dim: int) -> nn.Sequential:
    """A token-wise scalar gate on attention values, sigmoid(MLP(token)); the last layer starts at zero (0.5)."""
    gate = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, 1))
    nn.init.zeros_(gate[-1].weight)
    nn.init.zeros_(gate[-1].bias)
    return gate


class GatedCrossAttention(nn.Module):
    """queries (B, Q, W) += out(attn(q, image) + attn(q, text)), RMS-normed inputs; with `gated`, each image
    (text) token's value is scaled by its own gate. Without `text`, the image tokens only."""

    def __init__(self, width: int, num_heads: int, *, text: bool, gated: bool):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"the head's width {width} is not divisible by its {num_heads} attention heads")
        self.num_heads = num_heads
        self.norm_q, self.norm_v = nn.RMSNorm(width), nn.RMSNorm(width)
        self.to_q = nn.Linear(width, width)
        self.to_k_vis, self.to_v_vis = nn.Linear(width, width), nn.Linear(width, width)
        if text:
            self.norm_t = nn.RMSNorm(width)
            self.to_k_text, self.to_v_text = nn.Linear(width, width), nn.Linear(width, width)
        self.to_out = nn.Sequential(nn.Linear(width, width))
        self.text, self.gated = text, gated
        if gated:
            self.gate_vis = _gate(width)
            if text:
                self.gate_text = _gate(width)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, H = q.shape[0], self.num_heads
        heads = lambda x: x.view(B, x.shape[1], H, -1).transpose(1, 2)  # noqa: E731
        return F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(B, q.shape[1], -1)

    def _branch(self, q, tokens, to_k, to_v, gate) -> torch.Tensor:
        v = to_v(tokens)
        if gate is not None:
            v = v * torch.sigmoid(gate(tokens))
        return self._attend(q, to_k(tokens), v)

    def forward(self, queries: torch.Tensor, image: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        q = self.to_q(self.norm_q(queries))
        h = self._branch(q, self.norm_v(image), self.to_k_vis, self.to_v_vis, self.gate_vis if self.gated else None)
        if self.text and text is not None:
            h = h + self._branch(q, self.norm_t(text), self.to_k_text, self.to_v_text, self.gate_text if self.gated else None)
        return queries + self.to_out(h)


class RewardHead(nn.Module):
    """Tapped tokens -> score (B,).

    dim: the backbone's token width; temb_dim: its time embedding's; width: the head's (the release: dim);
    image_taps / text_taps: how many taps of each stream it reads."""

    def __init__(self, dim: int, temb_dim: int, *, image_taps: int, text_taps: int, width: int, num_queries: int = 4,
                 num_heads: int = 8):
        super().__init__()
        self.layer_adapters_visual = nn.ModuleList([FiLMAdapter(dim, temb_dim, width) for _ in range(image_taps)])
        self.layer_adapters_text = nn.ModuleList([FiLMAdapter(dim, temb_dim, width) for _ in range(text_taps)])
        self.agg_visual = nn.Linear(image_taps * (width // 4), width)
        self.agg_text = nn.Linear(text_taps * (width // 4), width) if text_taps else None
        self.query_tokens = nn.Parameter(torch.randn(1, num_queries, width) * 0.02)
        self.attn1 = GatedCrossAttention(width, num_heads, text=text_taps > 0, gated=True)
        self.attn2 = GatedCrossAttention(width, num_heads, text=False, gated=False)
        self.norm_ff = nn.RMSNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.head = nn.Linear(width, 1)

    def view_tokens(self, image: list[torch.Tensor], text: list[torch.Tensor], temb: torch.Tensor):
        """One noise level's taps, image [(B, N, D)] and text [(B, M, D)], -> (B, N, W) and (B, M, W) or None."""
        if len(image) != len(self.layer_adapters_visual) or len(text) != len(self.layer_adapters_text):
            raise ValueError(f"the head reads {len(self.layer_adapters_visual)} image and {len(self.layer_adapters_text)} "
                             f"text taps, but got {len(image)} and {len(text)}")
        visual = self.agg_visual(torch.cat([a(x, temb) for a, x in zip(self.layer_adapters_visual, image)], -1))
        if not text:
            return visual, None
        return visual, self.agg_text(torch.cat([a(x, temb) for a, x in zip(self.layer_adapters_text, text)], -1))

    def forward(self, views: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
        """views: `view_tokens` of one or more noise levels; several are fused by concatenating their tokens
        (the release's noise ensemble), so the queries read them all at once. -> (B,)"""
        visual = torch.cat([v for v, _ in views], 1)
        texts = [t for _, t in views if t is not None]
        text = torch.cat(texts, 1) if texts else None
        q = self.query_tokens.expand(visual.shape[0], -1, -1)
        q = self.attn2(self.attn1(q, visual, text), visual)
        q = q + self.ff(self.norm_ff(q))
        return self.head(q).mean(dim=1).squeeze(-1)
