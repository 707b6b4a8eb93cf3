"""Prompt encodings kept per prompt string: a value reads the same few prompts thousands of times."""

import torch

from diffusion.conditioning import Conditioning
from diffusion.flow_model import FlowModel


class PromptCache:
    """`cache(prompts)` -> the backbone's `Conditioning` of the B prompts, each distinct prompt encoded once;
    the first `size` distinct prompts are kept (after that, a batch with a new one is encoded as it is)."""

    def __init__(self, backbone: FlowModel, size: int = 4096):
        self.backbone, self.size = backbone, size
        self._encoded: dict[str, Conditioning] = {}

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> Conditioning:
        missing = list(dict.fromkeys(p for p in prompts if p not in self._encoded))
        if missing:
            encoded = self.backbone.encode_prompt(missing)
            for k, prompt in enumerate(missing):
                if len(self._encoded) < self.size:
                    self._encoded[prompt] = encoded.index(slice(k, k + 1))
            if any(p not in self._encoded for p in prompts):
                return self.backbone.encode_prompt(list(prompts))
        return Conditioning.concat([self._encoded[p] for p in prompts])
