"""A latent reward model on disk: our export, and the released DiNa-LRM checkpoint's layout.

Ours (`save_latent_reward`): `latent_reward.safetensors` (the LoRA weights under `trunk.`, PEFT's
portable names, and the head under `head.`) and `latent_reward.json` (its config, the backbone's
identity as a stitched value records it, and the training metrics), the folder replaced at once.

The release (`liuhuohuo/DiNa-LRM-SD35M-12layers`): `config.json` (`model.num_transformer_layers`,
`visual_head_idx`, `text_head_idx`, `lora_config`, `reward_head`), `checkpoint/backbone_lora/` (a PEFT
adapter folder: `adapter_model.safetensors` with `base_model.model.` in front of our trunk's names) and
`checkpoint/rm_head.pt` (the head's state dict, read with `weights_only=True`). It records no backbone
identity: it is checked by shape against the backbone it is loaded with, and scored at s = 0.4, the
level its README recommends for a sampler's latents.
"""

import json
from dataclasses import asdict
from pathlib import Path

from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file

from diffusion.atomic_folder import write_folder_atomically
from diffusion.flow_model import FlowModel
from diffusion.weights_file import load_weights_file
from value.latent_reward import LatentRewardConfig, LatentRewardModel
from value.stitched import backbone_identity, check_identity

WEIGHTS, CARD = "latent_reward.safetensors", "latent_reward.json"
RELEASED_CONFIG, RELEASED_LORA, RELEASED_HEAD = "config.json", "checkpoint/backbone_lora/adapter_model.safetensors", "checkpoint/rm_head.pt"
RELEASED_NOISE_LEVELS = [0.4]
BUILD = "python launch/latent_reward.py"


def save_latent_reward(model: LatentRewardModel, folder: str | Path, card: dict) -> None:
    """Weights and card; `card` should name the backbone (`backbone`) and may carry metrics."""
    full = {**card, "config": asdict(model.config), "backbone_identity": backbone_identity(model.backbone, model.config.blocks)}
    weights = {f"trunk.{k}": v for k, v in get_peft_model_state_dict(model.trunk).items()}
    weights |= {f"head.{k}": v for k, v in model.head.state_dict().items()}

    def write(tmp: Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS))
        (tmp / CARD).write_text(json.dumps(full, indent=2))

    write_folder_atomically(folder, write)


def load_latent_reward(folder: str | Path, backbone: FlowModel, *, setting: str = "value.path") -> LatentRewardModel:
    """Our export or the release's layout, whichever `folder` holds, on `backbone` (frozen, shared)."""
    folder = Path(folder)
    if (folder / CARD).is_file() and (folder / WEIGHTS).is_file():
        return _load_ours(folder, backbone, setting)
    if (folder / RELEASED_CONFIG).is_file():
        return _load_released(folder, backbone, setting)
    raise FileNotFoundError(f"{setting}: no latent reward model in {str(folder)!r} (need {CARD} and {WEIGHTS}, or the "
                            f"released layout's {RELEASED_CONFIG}, {RELEASED_LORA} and {RELEASED_HEAD}); train one with {BUILD}")


def _load_ours(folder: Path, backbone: FlowModel, setting: str) -> LatentRewardModel:
    card = json.loads((folder / CARD).read_text())
    config = LatentRewardConfig(**card["config"])
    if config.blocks > backbone.num_blocks:
        raise ValueError(f"{setting}: the latent reward in {str(folder)!r} keeps {config.blocks} blocks, but this backbone "
                         f"has {backbone.num_blocks}; load it with the backbone it was trained on ({card.get('backbone', '?')})")
    check_identity(card.get("backbone_identity"), backbone_identity(backbone, config.blocks), what="backbone",
                   folder=folder, name=card.get("backbone", "?"), build=BUILD)
    model = LatentRewardModel(backbone, config)
    state = load_weights_file(folder / WEIGHTS, what=setting)
    _load_parts(model, state, setting=setting, path=folder / WEIGHTS)
    return model.eval()


def _load_parts(model: LatentRewardModel, state: dict, *, setting: str, path: Path) -> None:
    """`trunk.` (LoRA) and `head.` weights into `model`, refusing any missing, unexpected or misshapen one."""
    lora = {k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}
    head = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    fix = f"train a latent reward for this backbone with {BUILD}"
    expected = get_peft_model_state_dict(model.trunk)
    wrong = [k for k, v in lora.items() if k not in expected or expected[k].shape != v.shape]
    if wrong or set(expected) - set(lora):
        raise ValueError(f"{setting}: {str(path)!r}: its LoRA weights do not fit this backbone's first "
                         f"{model.config.blocks} blocks (unexpected or misshapen: {wrong[:3]}, missing: "
                         f"{sorted(set(expected) - set(lora))[:3]}); {fix}")
    set_peft_model_state_dict(model.trunk, lora)
    own = model.head.state_dict()
    wrong = [k for k, v in head.items() if k not in own or own[k].shape != v.shape]
    if wrong or set(own) - set(head):
        raise ValueError(f"{setting}: {str(path)!r}: its reward head does not fit (unexpected or misshapen: {wrong[:3]}, "
                         f"missing: {sorted(set(own) - set(head))[:3]}); was it trained on a backbone of another width? {fix}")
    model.head.load_state_dict(head)


def _load_released(folder: Path, backbone: FlowModel, setting: str) -> LatentRewardModel:
    for part in (RELEASED_LORA, RELEASED_HEAD):
        if not (folder / part).is_file():
            raise FileNotFoundError(f"{setting}: {str(folder)!r} has the released {RELEASED_CONFIG} but no {part}; "
                                    "download the whole checkpoint folder again")
    spec = json.loads((folder / RELEASED_CONFIG).read_text())["model"]
    blocks = int(spec["num_transformer_layers"])
    if blocks > backbone.num_blocks:
        raise ValueError(f"{setting}: the checkpoint in {str(folder)!r} keeps {blocks} blocks, but this backbone has "
                         f"{backbone.num_blocks}; load it with SD3.5 Medium, the backbone it was trained on")
    head_spec, lora_spec = spec.get("reward_head", {}), spec.get("lora_config", {})
    config = LatentRewardConfig(
        blocks=blocks, image_taps=list(spec["visual_head_idx"]), text_taps=list(spec["text_head_idx"]),
        lora_rank=int(lora_spec.get("r", 64)), lora_alpha=float(lora_spec.get("lora_alpha", 128)),
        width=max(int(head_spec.get("width", -1)), 0), num_queries=int(head_spec.get("num_queries", 4)),
        num_heads=int(head_spec.get("num_attn_heads", 8)), noise_levels=RELEASED_NOISE_LEVELS,
    )
    model = LatentRewardModel(backbone, config)
    lora = load_weights_file(folder / RELEASED_LORA, what=setting)
    head = load_weights_file(folder / RELEASED_HEAD, what=setting)
    state = {f"trunk.{k.removeprefix('base_model.model.')}": v for k, v in lora.items()}
    state |= {f"head.{k}": v for k, v in head.items()}
    _load_parts(model, state, setting=setting, path=folder)
    return model.eval()
