"""Prompt files: one prompt per line, blank lines skipped."""

from pathlib import Path


def read_prompt_file(path: str) -> list[str]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"prompt_file={path!r} does not exist (one prompt per line expected)")
    prompts = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"prompt_file={path!r} has no non-empty lines")
    return prompts
