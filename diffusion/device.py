"""The one place that turns "auto" | "cpu" | "cuda" into a device, a dtype and a collective backend."""

import torch

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks cuda when it is there, else cpu; an explicit "cuda" without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but no CUDA device is visible; use device=cpu or device=auto")
    return device


def check_device_name(name: str) -> None:
    """Refuse what `resolve_device` could never resolve, without looking for a GPU (a driver may have none)."""
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        raise ValueError(f"device={name!r} is not one of auto, cpu, cuda, cuda:N")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ValueError(f"dtype={name!r} is not one of {sorted(_DTYPES)}")
    return _DTYPES[name]


def collective_backend(device: torch.device) -> str:
    """gloo on CPU, nccl on GPU (DESIGN.md section 6)."""
    return "nccl" if device.type == "cuda" else "gloo"


def is_cuda(device: torch.device | str) -> bool:
    """Whether tensors on `device` live on a CUDA GPU (memory and synchronisation go through torch.cuda)."""
    return torch.device(device).type == "cuda"
