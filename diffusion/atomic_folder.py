"""Replacing a folder all at once: written beside it under a temporary name, then swapped in, so an
interrupted write never leaves a half-written folder that looks complete (world components, exported
value models), and the training checkpoints built on it."""

import json
import os
import shutil
from pathlib import Path


def write_folder_atomically(folder: str | Path, write) -> Path:
    """Call write(tmp_folder), then put tmp_folder in place of `folder` (replacing it if it exists)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


# Training checkpoints: `step_000100/` folders written atomically, with a JSON state written last (a
# folder without it is not a checkpoint), the newest `keep` kept. The stitcher and the RL jobs share them.
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
