"""Replacing a folder all at once: written beside it under a temporary name, then swapped in, so an
interrupted write never leaves a half-written folder that looks complete (world components, exported
value models, and the training checkpoints of `diffusion.checkpoint`)."""

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


def write_file_atomically(path: str | Path, write) -> Path:
    """Call write(tmp_path), then rename tmp_path to `path` (one rename: a reader sees the old file or the new)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)
    return path
