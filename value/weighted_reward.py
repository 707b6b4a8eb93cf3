"""A weighted sum of named rewards, the training signal of the RL jobs (each term is logged on its own).

Scales differ between rewards (a CLIP cosine is ~0.3, an aesthetic score ~6); the weights are the
user's to set, and DiffusionNFT's per-group normalisation sees only the sum.
"""

from dataclasses import dataclass

import torch
from torch import nn

from value.reward_config import RewardConfig, build_reward_model
from value.reward_model import RewardModel


@dataclass(kw_only=True)
class RewardTermConfig:
    """One term of the training reward: weight x reward model."""

    weight: float = 1.0
    model: RewardConfig


class WeightedReward(nn.Module):
    """images (B, 3, H, W) in [0, 1] + B prompts -> (total (B,), {name: term (B,)}), terms unweighted."""

    def __init__(self, terms: dict[str, tuple[float, RewardModel]]):
        super().__init__()
        if not terms:
            raise ValueError("the training reward has no terms; name at least one under `rewards`")
        self.weights = {name: float(w) for name, (w, _) in terms.items()}
        self.models = nn.ModuleDict({name: m for name, (_, m) in terms.items()})

    @classmethod
    def from_config(cls, terms: dict[str, RewardTermConfig]) -> "WeightedReward":
        return cls({name: (t.weight, build_reward_model(t.model)) for name, t in terms.items()})

    def forward(self, images: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = {name: model(images, prompts).float() for name, model in self.models.items()}
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise FloatingPointError(
                    f"reward term {name!r} returned NaN or inf for {(~torch.isfinite(value)).sum().item()} images; "
                    "check its weights file and the decoded images"
                )
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, terms
