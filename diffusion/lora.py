"""LoRA on the transformer's attention projections, through diffusers' PEFT integration.

The adapter can be switched off, so the same weights serve as the frozen reference policy
(DiffusionNFT's KL term, the value model's backbone head) without a second copy of the model.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from peft import LoraConfig as PeftLoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn

# Image-stream (to_*) and text-stream (add_*) projections of SD3 / FLUX attention; FLUX's single blocks
# have no to_out, and PEFT skips names a model lacks.
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")


@dataclass(kw_only=True)
class LoraConfig:
    rank: int = 32
    alpha: float = 64.0
    target_modules: tuple[str, ...] = ATTENTION_PROJECTIONS

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"lora.rank={self.rank} must be at least 1")


def add_lora(transformer: nn.Module, config: LoraConfig) -> None:
    """Inject LoRA adapters (B zero-initialised, so outputs are unchanged) and freeze everything else."""
    transformer.requires_grad_(False)
    transformer.add_adapter(
        PeftLoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            target_modules=list(config.target_modules),
            init_lora_weights=True,
        )
    )
    trainable = [n for n, p in transformer.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable), f"unexpected trainable parameters: {trainable[:5]}"


@contextmanager
def lora_disabled(transformer: nn.Module):
    """Run the base weights (the reference model) inside the block; the adapters come back after it."""
    transformer.disable_adapters()
    try:
        yield transformer
    finally:
        transformer.enable_adapters()


def lora_state_dict(transformer: nn.Module) -> dict:
    """The adapter weights only, with PEFT's portable key names (what the learners publish)."""
    return get_peft_model_state_dict(transformer)


def load_lora_state_dict(transformer: nn.Module, state: dict) -> None:
    result = set_peft_model_state_dict(transformer, state)
    if result.unexpected_keys:
        raise ValueError(f"LoRA state has keys this transformer lacks: {result.unexpected_keys[:5]}")
