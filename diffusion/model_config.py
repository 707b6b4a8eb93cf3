"""`ModelConfig` (mirrored by configs/model/*.yaml) and the one function that builds a flow model from it."""

from dataclasses import dataclass

from diffusion.device import resolve_dtype
from diffusion.flow_model import FlowModel
from diffusion.flux import FluxFlowModel
from diffusion.model_dir import check_model_dir, looks_like_hub_id
from diffusion.sd3 import SD3FlowModel
from diffusion.tiny import tiny_flux_pipeline, tiny_sd3_pipeline

FAMILIES = ("sd3", "flux")
PIPELINES = {"sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline"}  # the diffusers class each family reads
INITS = ("pretrained", "random_tiny")


@dataclass(kw_only=True)
class ModelConfig:
    """family: sd3 (SD3.5 M/L, the tiny world) | flux (FLUX.1).
    init: pretrained (read `path`, a diffusers directory or hub id) | random_tiny (the family's tiny
    architecture with random weights, seeded by `seed`: smoke runs only, it draws noise-like images).
    max_sequence_length: T5 tokens (zeros when the pipeline has no T5). guidance: FLUX's distilled scale.
    """

    family: str = "sd3"
    init: str = "pretrained"
    path: str = ""
    dtype: str = "float32"
    max_sequence_length: int = 256
    guidance: float = 3.5
    seed: int = 0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"model.family={self.family!r} is not one of {FAMILIES}")
        if self.init not in INITS:
            raise ValueError(f"model.init={self.init!r} is not one of {INITS}")
        if self.init == "pretrained" and not self.path:
            raise ValueError("model.path is empty; set it to a diffusers-layout directory (or use model.init=random_tiny)")
        resolve_dtype(self.dtype)


def build_flow_model(cfg: ModelConfig) -> FlowModel:
    dtype = resolve_dtype(cfg.dtype)
    match (cfg.family, cfg.init):
        case ("sd3", "pretrained"):
            return SD3FlowModel.from_pretrained(cfg.path, dtype=dtype, max_sequence_length=cfg.max_sequence_length)
        case ("flux", "pretrained"):
            return FluxFlowModel.from_pretrained(
                cfg.path, dtype=dtype, guidance=cfg.guidance, max_sequence_length=cfg.max_sequence_length
            )
        case ("sd3", "random_tiny"):
            return SD3FlowModel(tiny_sd3_pipeline(cfg.seed), max_sequence_length=cfg.max_sequence_length).to(dtype=dtype)
        case ("flux", "random_tiny"):
            pipeline = tiny_flux_pipeline(cfg.seed)
            return FluxFlowModel(pipeline, guidance=cfg.guidance, max_sequence_length=cfg.max_sequence_length).to(dtype=dtype)
        case _:
            raise AssertionError(f"unreachable: {cfg.family}/{cfg.init} passed validation")


def check_model_files(cfg: ModelConfig) -> None:
    """What `build_flow_model` checks before reading a local folder (its layout, every weights file's header,
    each config against its weights' shapes), without reading the weights: seconds for SD3.5 or FLUX."""
    if cfg.init == "pretrained" and not looks_like_hub_id(cfg.path):
        check_model_dir(cfg.path, pipeline_classes=(PIPELINES[cfg.family],), family=cfg.family)
