"""Training checkpoints of a stitched value: `step_000100/` folders holding the trainable weights and the
optimiser's tensors (safetensors) and the step and schedule (JSON). Each is written to a temporary
folder and renamed into place, so a crash never leaves a half-written checkpoint that looks complete;
the two newest are kept."""

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from diffusion.checkpoint import load_optimizer_tensors, optimizer_tensors, read_checkpoint_state, write_checkpoint


def save_training_state(folder: str | Path, step: int, model: torch.nn.Module, opt, sched) -> Path:
    # The groups' hyperparameters go with the state: resumed, the first step must use the saved lr, which
    # the scheduler only sets at its next step. LambdaLR's state_dict keeps its lambdas out (None), so the
    # schedule's state is plain JSON.
    meta = {"step": step, "param_groups": opt.state_dict()["param_groups"], "scheduler": sched.state_dict()}

    def write(tmp: Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        save_file(optimizer_tensors(opt), str(tmp / "optimizer.safetensors"))

    return write_checkpoint(folder, step, write, meta)


def load_training_state(path: str | Path, model: torch.nn.Module, opt, sched) -> int:
    """Restore model, optimiser and schedule from a checkpoint folder; returns its step."""
    path = Path(path)
    meta = read_checkpoint_state(path)
    mismatch = (
        f"checkpoint {str(path)!r} does not fit this value model: it was trained with another stitch point "
        "or reward; point the run at a fresh directory"
    )
    try:
        missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    except RuntimeError as err:  # a parameter of another shape
        raise ValueError(f"{mismatch} ({err})") from err
    if missing or unexpected:
        raise ValueError(f"{mismatch} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    opt.load_state_dict({"state": {}, "param_groups": meta["param_groups"]})
    load_optimizer_tensors(opt, load_file(str(path / "optimizer.safetensors")))
    sched.load_state_dict(meta["scheduler"])
    return int(meta["step"])
