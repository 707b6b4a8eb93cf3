"""Preference pairs in latent space, what a latent reward model trains on, and their file.

A file is one safetensors with `chosen` and `rejected` (N, C, h, w) clean latents (the generator's VAE,
scaled) and, in its metadata, `prompts` (a JSON list of N strings) and `sources` (where each pair came
from, for the report).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from diffusion.atomic_folder import write_file_atomically


@dataclass
class PreferencePairs:
    """Pair k: `prompts[k]`, with latent `chosen[k]` preferred to `rejected[k]`; `sources[k]` names its origin."""

    prompts: list[str]
    chosen: torch.Tensor
    rejected: torch.Tensor
    sources: list[str]

    def __post_init__(self):
        n = len(self.prompts)
        if self.chosen.shape != self.rejected.shape:
            raise ValueError(f"chosen latents are {tuple(self.chosen.shape)} but rejected ones {tuple(self.rejected.shape)}; "
                             "both sides of every pair must be latents of one shape")
        if self.chosen.dim() != 4 or self.chosen.shape[0] != n or len(self.sources) != n:
            raise ValueError(f"{n} prompts, {len(self.sources)} sources and latents of shape {tuple(self.chosen.shape)}: "
                             "give one prompt and one source per pair and latents (N, C, h, w)")
        if any(not isinstance(p, str) or not p for p in self.prompts):
            raise ValueError("a pair has no prompt (empty or not a string); every pair needs the prompt it was judged for")
        if not (torch.isfinite(self.chosen).all() and torch.isfinite(self.rejected).all()):
            raise ValueError("the pairs' latents hold NaN or inf; re-encode the images they came from")

    def __len__(self) -> int:
        return len(self.prompts)

    def select(self, idx) -> "PreferencePairs":
        """The pairs at `idx` (a list or LongTensor of indices)."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        return PreferencePairs([self.prompts[k] for k in idx.tolist()], self.chosen[idx], self.rejected[idx],
                               [self.sources[k] for k in idx.tolist()])

    def batches(self, size: int):
        """(start, the pairs start..start + size - 1) over the whole set, in order."""
        for start in range(0, len(self), size):
            yield start, self.select(list(range(start, min(start + size, len(self)))))

    @staticmethod
    def concat(parts: list["PreferencePairs"]) -> "PreferencePairs":
        return PreferencePairs([p for part in parts for p in part.prompts], torch.cat([p.chosen for p in parts]),
                               torch.cat([p.rejected for p in parts]), [s for part in parts for s in part.sources])

    def save(self, path: str | Path) -> None:
        """Written to a temporary file and renamed, so an existing file is never half replaced."""
        meta = {"prompts": json.dumps(self.prompts), "sources": json.dumps(self.sources)}
        tensors = {"chosen": self.chosen.detach().float().contiguous(), "rejected": self.rejected.detach().float().contiguous()}
        write_file_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))

    @staticmethod
    def load(path: str | Path, *, setting: str = "pairs.path") -> "PreferencePairs":
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"{setting}: {str(path)!r}: no such pair file; write one with PreferencePairs.save "
                                    "(python launch/latent_reward.py builds the tiny world's)")
        try:
            with safe_open(str(file), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types for a damaged header
            raise ValueError(f"{setting}: {str(path)!r} is not a readable safetensors pair file ({e})") from e
        missing = [k for k in ("chosen", "rejected") if k not in tensors] + [k for k in ("prompts", "sources") if k not in meta]
        if missing:
            raise ValueError(f"{setting}: {str(path)!r} lacks {missing}; a pair file holds `chosen` and `rejected` "
                             "latents and `prompts` and `sources` in its metadata")
        try:
            return PreferencePairs(json.loads(meta["prompts"]), tensors["chosen"], tensors["rejected"], json.loads(meta["sources"]))
        except ValueError as e:
            raise ValueError(f"{setting}: {str(path)!r}: {e}") from e
