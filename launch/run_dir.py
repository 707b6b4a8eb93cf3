"""Every launch script's run directory: absolute (a submitted Ray job runs from a temporary copy of the
working directory), created, and holding the resolved config it was started with."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def start_run_dir(run_dir: str, raw: DictConfig) -> Path:
    path = Path(run_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(OmegaConf.to_yaml(raw, resolve=True))
    return path
