"""CLIP text towers: prompts -> L2-normalised text embeddings (B, E). Frozen, so no gradients."""

import torch
import torch.nn.functional as F
from torch import nn


class OpenCLIPText(nn.Module):
    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> torch.Tensor:
        device = self.model.logit_scale.device
        return self.model.encode_text(self.tokenizer(list(prompts)).to(device), normalize=True)


class HFCLIPText(nn.Module):
    def __init__(self, clip_model: nn.Module, tokenizer):
        super().__init__()
        self.model = clip_model
        self.tokenizer = tokenizer

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
        out = self.model.get_text_features(**tokens.to(self.model.device))
        # transformers 5 returns a ModelOutput whose pooler_output is the projected embedding.
        emb = out if torch.is_tensor(out) else out.pooler_output
        return F.normalize(emb, dim=-1)
