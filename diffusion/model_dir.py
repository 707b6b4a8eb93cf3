"""Checks on a diffusers-layout model directory before diffusers reads it, so that a missing, incomplete
or damaged directory fails with one message naming what is wrong and how to fix it."""

import importlib
import json
from pathlib import Path

import torch

from diffusion.weights_file import WEIGHT_SUFFIXES, DamagedWeightsError, check_finite, read_header

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json")


def looks_like_hub_id(path: str) -> bool:
    """'org/name' that is not a local path: handed to diffusers, which resolves it where a hub is reachable."""
    return not Path(path).exists() and path.count("/") == 1 and not path.startswith((".", "/", "~"))


def check_model_dir(path: str, *, pipeline_classes: tuple[str, ...], family: str) -> dict:
    """Validate `path` and return its model_index.json as a dict.

    Raises FileNotFoundError for a missing directory, model_index.json or component folder, and
    ValueError when the directory holds another pipeline class than `family` loads.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"model.path: {str(root)!r} does not exist. Set model.path to a diffusers-layout directory "
            "(model_index.json, transformer/, vae/, text_encoder*/, tokenizer*/, scheduler/), "
            "or build the tiny world first: python launch/world.py"
        )
    index_file = root / "model_index.json"
    if not index_file.is_file():
        raise FileNotFoundError(
            f"model.path: {str(root)!r} has no model_index.json, so it is not a diffusers pipeline directory; "
            "save one with pipeline.save_pretrained(path) or point model.path at the directory that has it"
        )
    index = json.loads(index_file.read_text())
    cls = index.get("_class_name")
    if cls not in pipeline_classes:
        raise ValueError(
            f"model.path: {str(root)!r} holds a {cls}, but model.family={family!r} loads {' or '.join(pipeline_classes)}; "
            "set model.family to match the checkpoint"
        )
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"model.path: {str(root)!r} is incomplete: model_index.json lists {name!r} but {name}/ is missing")
        is_model = (folder / "config.json").is_file()
        if is_model and not any(any(folder.glob(p)) for p in _WEIGHT_PATTERNS):
            raise FileNotFoundError(f"model.path: {str(root)!r} is incomplete: {name}/ has a config.json but no weights file")
        if is_model:
            check_config_matches_weights(folder, library=spec[0], class_name=spec[1], what="model.path")
    return index


def check_config_matches_weights(folder: Path, *, library: str, class_name: str, what: str) -> None:
    """Every weights file's header in a diffusers or transformers model folder read, and its shapes compared
    with the model its config.json builds (on the meta device: no memory, about a second for FLUX), so a
    config that does not match its weights is named before the library reports a bare shape error.
    what: the config key that named the folder."""
    header = {}
    for file in sorted(f for f in folder.iterdir() if f.suffix in WEIGHT_SUFFIXES):
        header |= read_header(file, what=what)
    expected = _shapes_on_meta(folder, library, class_name)
    wrong = [f"{k} {header[k][1]} (config gives {expected[k]})" for k in sorted(header.keys() & expected.keys())
             if tuple(header[k][1]) != expected[k]]
    if wrong:
        raise DamagedWeightsError(
            f"{what}: {str(folder)!r}: config.json does not match the weights beside it, {len(wrong)} tensors differ "
            f"in shape ({', '.join(wrong[:3])}); expected the config the weights were saved with: copy the folder again"
        )


def _shapes_on_meta(folder: Path, library: str, class_name: str) -> dict[str, tuple[int, ...]]:
    """{name: shape} of the model `class_name` builds from `folder`/config.json; {} for a class we cannot build."""
    cls = getattr(importlib.import_module(library), class_name, None) if library in ("diffusers", "transformers") else None
    if cls is None:
        return {}
    with torch.device("meta"):
        if library == "diffusers":
            model = cls.from_config(cls.load_config(str(folder)))
        else:
            from transformers import AutoConfig

            model = cls._from_config(AutoConfig.from_pretrained(str(folder), local_files_only=True))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_pipeline(pipeline_cls, path: str, *, family: str, dtype):
    """`pipeline_cls.from_pretrained(path)` after the checks above; local files only unless `path` is a hub id."""
    hub = looks_like_hub_id(path)
    absent = {}
    if not hub:
        index = check_model_dir(path, pipeline_classes=(pipeline_cls.__name__,), family=family)
        # Components saved as [null, null] (e.g. SD3 without T5) must be passed as None explicitly.
        absent = {k: None for k, v in index.items() if isinstance(v, list) and v[0] is None}
    try:
        pipeline = pipeline_cls.from_pretrained(
            str(Path(path).expanduser()), dtype=dtype, local_files_only=not hub, **absent
        )
    except OSError as err:
        where = "the hub (is it reachable? no hub is, on the tiny world's machines)" if hub else "disk"
        raise FileNotFoundError(f"could not load {pipeline_cls.__name__} {path!r} from {where}: {err}") from err
    for name, component in pipeline.components.items():
        if isinstance(component, torch.nn.Module):
            check_finite(component, what="model.path", path=Path(path) / name)
    return pipeline
