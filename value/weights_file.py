"""Reading weight files without unpickling arbitrary objects: safetensors, or torch's zip format with
`weights_only=True` (the only way the real aesthetic head and HPSv2 files are distributed)."""

from pathlib import Path

import torch
from safetensors.torch import load_file


def load_weights_file(path: str, *, what: str) -> dict[str, torch.Tensor]:
    """A flat state dict from `path`; a {"state_dict": ...} wrapper and a DDP "module." prefix are removed.

    what: the config field that named the file, for the error message (e.g. "reward.head_path").
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what}={path!r}: no such file")
    try:
        if file.suffix == ".safetensors":
            state = load_file(str(file))
        else:
            # map_location: the real LAION aesthetic head was saved on cuda:0.
            state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated, or a pickle that is more than tensors
        raise ValueError(
            f"{what}={path!r} could not be read as weights ({type(err).__name__}: {err}). "
            "Use a .safetensors file or a torch.save'd state dict of plain tensors."
        ) from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{what}={path!r} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def check_keys(expected: set[str], found: set[str], *, what: str, path: str, fix: str) -> None:
    """Raise one ValueError listing missing and unexpected keys (the first few of each)."""
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ValueError(
            f"{what}={path!r} does not match the model: missing keys {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}. {fix}"
        )
