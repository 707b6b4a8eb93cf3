"""Training checkpoints, shared by the stitcher and the RL jobs: `step_000100/` folders written atomically,
with a JSON state written last (a folder without it is not a checkpoint), the newest `keep` kept; and the
one way an optimizer's state becomes named tensors for safetensors and back (never a pickle)."""

import json
import shutil
from pathlib import Path

import torch

from diffusion.atomic_folder import write_folder_atomically

CHECKPOINT_STATE = "state.json"


def _checkpoints(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("step_*") if p.is_dir() and (p / CHECKPOINT_STATE).is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The complete step folder with the highest step under `folder`, or None."""
    found = _checkpoints(Path(folder))
    return found[-1] if found else None


def write_checkpoint(folder: str | Path, step: int, write, state: dict, keep: int = 2) -> Path:
    """folder/step_<step>/: write(tmp_folder), then `state` as JSON, swapped in at once; older ones pruned."""
    folder = Path(folder)

    def write_all(tmp: Path) -> None:
        write(tmp)
        (tmp / CHECKPOINT_STATE).write_text(json.dumps(state, indent=2))

    final = write_folder_atomically(folder / f"step_{step:06d}", write_all)
    for old in _checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint_state(path: str | Path) -> dict:
    path = Path(path)
    if not (path / CHECKPOINT_STATE).is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a complete checkpoint (no {CHECKPOINT_STATE}); delete it and resume")
    return json.loads((path / CHECKPOINT_STATE).read_text())


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Each parameter's optimizer state as "g<group>.p<index>.<key>" tensors on the CPU (AdamW: step,
    exp_avg, exp_avg_sq). Hyperparameters (lr, betas, ...) are not state: schedulers and configs own them."""
    return {f"g{gi}.p{pi}.{key}": torch.as_tensor(value).detach().cpu().contiguous()
            for gi, group in enumerate(opt.param_groups) for pi, p in enumerate(group["params"])
            for key, value in opt.state.get(p, {}).items()}


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """The inverse of `optimizer_tensors` for an optimizer over the same parameters. Moments go to their
    parameter's device; `step` stays on the CPU, as torch keeps it for a non-fused AdamW. A key "param"
    (the learners' fp32 partition, saved beside its state) is not state and is skipped."""
    known = {f"g{gi}.p{pi}." for gi, group in enumerate(opt.param_groups) for pi in range(len(group["params"]))}
    foreign = [k for k in tensors if k[: k.find(".", k.find(".") + 1) + 1] not in known]
    if foreign:
        raise ValueError(f"the optimizer state holds tensors of no parameter here ({foreign[:3]}): it was written for "
                         "other parameters or by an older version; start the run in a fresh directory")
    for gi, group in enumerate(opt.param_groups):
        for pi, p in enumerate(group["params"]):
            prefix = f"g{gi}.p{pi}."
            keys = [k.removeprefix(prefix) for k in tensors if k.startswith(prefix)]
            opt.state[p] = {k: tensors[prefix + k].clone() if k == "step" else tensors[prefix + k].to(p.device, copy=True)
                            for k in keys if k != "param"}
