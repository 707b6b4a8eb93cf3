"""The world's cache directory: each component in its own folder with a `component.json` (its recipe
and the sha256 of every file), written to a temporary folder and swapped in whole, so an interrupted
build never leaves a half-written component that looks complete."""

import hashlib
import json
import os
from pathlib import Path

from diffusion.atomic_folder import write_folder_atomically

STAMP = "component.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): _sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STAMP
    }


def check_component(folder: Path, recipe: dict) -> str | None:
    """None when `folder` holds a complete component built from `recipe`, else why it must be rebuilt."""
    stamp = folder / STAMP
    if not stamp.is_file():
        return "missing" if not folder.exists() else "partial (no component.json)"
    meta = json.loads(stamp.read_text())
    if meta.get("recipe") != recipe:
        return "built from another recipe"
    if file_hashes(folder) != meta.get("files"):
        return "corrupt (file hashes differ from component.json)"
    return None


def write_component(folder: Path, recipe: dict, write, extra: dict | None = None) -> dict:
    """Call write(tmp_folder), stamp it, and swap it in place of `folder`; returns the stamp."""
    meta: dict = {}

    def write_and_stamp(tmp: Path) -> None:
        write(tmp)
        meta.update({"recipe": recipe, "files": file_hashes(tmp), **(extra or {})})
        (tmp / STAMP).write_text(json.dumps(meta, indent=2))

    write_folder_atomically(folder, write_and_stamp)
    return meta


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
