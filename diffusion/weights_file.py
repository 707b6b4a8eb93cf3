"""Reading weights files without unpickling arbitrary objects, and turning every way a file can be damaged
into one error that names the setting, the path, what was found and what was expected.

Two formats: safetensors, and torch's zip format read with `weights_only=True` (the only way the real
aesthetic head and HPSv2 files are distributed). `read_header` looks at a file without reading its
tensors (safetensors' header; the zip's pickle, memory-mapped), so the training jobs can check every
file before Ray starts.
"""

import zipfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                       "BOOL": torch.bool}

Header = dict[str, tuple[torch.dtype, tuple[int, ...]]]  # tensor name -> (dtype, shape)


class DamagedWeightsError(ValueError):
    """A weights file that cannot be read, or that holds something other than the weights expected."""


def _fail(what: str, path: str | Path, found: str, expected: str) -> DamagedWeightsError:
    return DamagedWeightsError(f"{what}: {str(path)!r}: {found}; expected {expected}")


def _unwrap(state) -> dict:
    """A {"state_dict": ...} wrapper and a DDP "module." prefix removed."""
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TypeError("it holds something other than a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def read_header(path: str | Path, *, what: str) -> Header:
    """{name: (dtype, shape)} of the tensors in `path`, without reading them. Raises FileNotFoundError for a
    missing file and DamagedWeightsError for an empty, truncated or unreadable one, or one holding integer
    weights (a quantised or mislabelled file that `load_state_dict` would cast silently)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what}: {str(path)!r}: no such file")
    size = file.stat().st_size
    if size == 0:
        raise _fail(what, path, "the file is empty (0 bytes; an interrupted download or copy?)",
                    "a safetensors file or a torch.save'd state dict; download or copy it again")
    if file.suffix != ".safetensors" and not zipfile.is_zipfile(file):
        raise _fail(what, path, f"{size} bytes that are not a zip-format torch.save archive (truncated, a raw pickle, "
                    "or a legacy torch < 1.6 file)", "a .safetensors file or a state dict saved by torch.save in torch >= 1.6; "
                    "download or copy it again, or convert it to .safetensors")
    try:
        if file.suffix == ".safetensors":
            with safe_open(str(file), "pt") as f:
                header = {k: (_SAFETENSORS_DTYPES.get(f.get_slice(k).get_dtype(), torch.float32),
                              tuple(f.get_slice(k).get_shape())) for k in f.keys()}
        else:
            # mmap: the pickle is read, the tensors' bytes are not. weights_only: never arbitrary objects.
            state = _unwrap(torch.load(str(file), map_location="cpu", weights_only=True, mmap=True))
            header = {k: (v.dtype, tuple(v.shape)) for k, v in state.items()}
    except Exception as err:  # noqa: BLE001 (whatever a damaged file raises; SafetensorError, EOFError, ...)
        found = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise _fail(what, path, f"{size} bytes that do not read as weights ({type(err).__name__}: {found}; "
                    "truncated or corrupt?)", "a complete safetensors file or a torch.save'd (zip format) state dict "
                    "of plain tensors; download or copy it again") from err
    integer = [k for k, (dtype, _) in header.items() if k.endswith((".weight", ".bias")) and not dtype.is_floating_point]
    if integer:
        raise _fail(what, path, f"{len(integer)} weights are stored as integers ({integer[0]!r} is {header[integer[0]][0]})",
                    "floating-point weights (f32, f16 or bf16); quantised checkpoints are not supported")
    return header


def load_weights_file(path: str | Path, *, what: str) -> dict[str, torch.Tensor]:
    """A flat state dict from `path`, after `read_header`'s checks; a {"state_dict": ...} wrapper and a DDP
    "module." prefix are removed. what: the config field that named the file (e.g. "reward.head_path")."""
    read_header(path, what=what)
    file = Path(path).expanduser()
    try:
        # map_location: the real LAION aesthetic head was saved on cuda:0.
        return _unwrap(load_file(str(file)) if file.suffix == ".safetensors"
                       else torch.load(str(file), map_location="cpu", weights_only=True))
    except Exception as err:  # noqa: BLE001 (the header read; anything here is damage further in)
        raise _fail(what, path, f"could not be read ({type(err).__name__}: {err})",
                    "a .safetensors file or a torch.save'd state dict of plain tensors") from err


def load_into(module: nn.Module, state: dict[str, torch.Tensor], *, what: str, path: str | Path, fix: str) -> None:
    """`module.load_state_dict(state)` (strict) with one error naming missing, unexpected and mis-shaped
    tensors, and `fix`; then `check_finite`."""
    mine = module.state_dict()
    check_keys(set(mine), set(state), what=what, path=str(path), fix=fix)
    shapes = [f"{k} {tuple(v.shape)} (expected {tuple(mine[k].shape)})" for k, v in state.items() if v.shape != mine[k].shape]
    if shapes:
        raise _fail(what, path, f"{len(shapes)} tensors have other shapes than the model: {', '.join(shapes[:3])}",
                    f"weights of this architecture. {fix}")
    module.load_state_dict(state)
    check_finite(module, what=what, path=path)


def check_finite(module: nn.Module, *, what: str, path: str | Path) -> None:
    """Refuse NaN or infinite parameters, naming the first: they would poison every score silently."""
    for name, p in module.named_parameters():
        if not torch.isfinite(p).all():
            raise _fail(what, path, f"parameter {name!r} holds NaN or infinite values",
                        "finite weights; the file was saved from a diverged run or is corrupt")


def check_keys(expected: set[str], found: set[str], *, what: str, path: str, fix: str) -> None:
    """Raise one error listing missing and unexpected keys (the first few of each)."""
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise DamagedWeightsError(
            f"{what}: {path!r} does not match the model: missing keys {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}. {fix}"
        )


def check_weights_path(path: str | Path, *, what: str) -> None:
    """`read_header` on a weights file, or on every weights file under a folder (a reward or value folder)."""
    root = Path(path).expanduser()
    files = sorted(f for f in root.rglob("*") if f.suffix in WEIGHT_SUFFIXES) if root.is_dir() else [root]
    for file in files:
        read_header(file, what=what)
