"""Which transformer weights a finetuning run trains (all of them, or LoRA adapters), and moving them
between copies of the same model by name: the weights learners publish and rollout workers load."""

from dataclasses import dataclass, field

import torch
from torch import nn

from diffusion.flow_model import FlowModel
from diffusion.lora import LoraConfig, add_lora

FINETUNE_MODES = ("full", "lora")


@dataclass(kw_only=True)
class FinetuneConfig:
    """mode: full (every transformer weight trains) | lora (adapters on the attention projections)."""

    mode: str = "full"
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self):
        if self.mode not in FINETUNE_MODES:
            raise ValueError(f"finetune.mode={self.mode!r} is not one of {FINETUNE_MODES}")


def make_trainable(model: FlowModel, cfg: FinetuneConfig) -> None:
    """Freeze everything but what `cfg` trains; LoRA adapters start at zero, so outputs are unchanged."""
    model.requires_grad_(False)
    if cfg.mode == "lora":
        add_lora(model.transformer, cfg.lora)
    else:
        model.transformer.requires_grad_(True)


def trainable_weights(model: FlowModel) -> dict[str, nn.Parameter]:
    """The trainable parameters, named as in `model.transformer`."""
    return {n: p for n, p in model.transformer.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable_weights(model: FlowModel, weights: dict[str, torch.Tensor]) -> None:
    """Copy published weights into this model's trainable parameters; the names must match exactly."""
    own = trainable_weights(model)
    if own.keys() != weights.keys():
        missing, extra = sorted(own.keys() - weights.keys()), sorted(weights.keys() - own.keys())
        raise ValueError(
            f"published weights do not fit this model (missing {missing[:3]}, unexpected {extra[:3]}); "
            "learners and rollout workers must use the same model and finetune config"
        )
    for name, p in own.items():
        p.copy_(weights[name].to(p.device, p.dtype))
