"""DiffusionNFT with Ray rollout workers and a DeepSpeed learner group.

    python launch/nft.py                                   # the tiny world, a local Ray, CPU
    python launch/nft.py rewards=tiny_clip train.steps=50  # another reward, a shorter run
    python launch/nft.py resume=runs/nft/<run>             # continue a run from its latest checkpoint
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python launch/nft.py run_dir=/abs/path

Writes <run_dir>/{config.yaml, metrics.jsonl, summary.json, curves.png, samples/, checkpoints/, wandb/}.
Every input is checked before Ray starts. The last line printed is the summary as one JSON object.
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
import ray  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from diffusion.atomic_folder import latest_checkpoint  # noqa: E402
from launch.config_schema import register_schemas  # noqa: E402
from launch.prompt_file import read_prompt_file  # noqa: E402
from launch.run_dir import start_run_dir  # noqa: E402
from learner.nft_config import NFTJobConfig  # noqa: E402
from learner.nft_trainer import CHECKPOINTS, NFTTrainer  # noqa: E402

register_schemas()

RESUME_MAY_CHANGE = ("resume", "train.steps")


def resumed_config(raw: DictConfig, overrides: list[str]) -> DictConfig:
    """The run's saved config with only train.steps taken from the command line (`overrides`)."""
    run_dir = Path(raw.resume).expanduser().resolve()
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"resume={raw.resume!r}: {saved} does not exist; point resume at a run directory of launch/nft.py")
    changed = [o.split("=")[0].lstrip("+~") for o in overrides]
    extra = [k for k in changed if k not in RESUME_MAY_CHANGE]
    if extra:
        raise ValueError(f"resume continues the run's saved config; only {RESUME_MAY_CHANGE} may be given, not {extra}")
    cfg = OmegaConf.merge(OmegaConf.structured(NFTJobConfig), OmegaConf.load(saved))
    cfg.train.steps = raw.train.steps if "train.steps" in changed else cfg.train.steps
    cfg.resume, cfg.run_dir = str(run_dir), str(run_dir)
    return cfg


def check_inputs(cfg: NFTJobConfig) -> tuple[list[str], list[str], object]:
    """Prompts, the verifier, and that every weights path exists: before any actor starts."""
    for name, term in cfg.rewards.items():
        if term.model.kind != "random_tiny_clip" and not Path(term.model.path).expanduser().exists():
            raise FileNotFoundError(f"rewards.{name}.model.path={term.model.path!r} does not exist")
    if cfg.model.init == "pretrained" and cfg.model.path.startswith(("/", ".", "~")) and not Path(cfg.model.path).expanduser().exists():
        raise FileNotFoundError(f"model.path={cfg.model.path!r} does not exist")
    from world.prompts import all_eval_prompts, training_prompts

    p = cfg.prompts
    train = read_prompt_file(p.train_file) if p.train_file else training_prompts(p.num_train, cfg.seed, p.eval_per_family)
    evals = read_prompt_file(p.eval_file) if p.eval_file else all_eval_prompts(p.eval_per_family)
    verifier = None
    if cfg.eval.verifier:
        if not Path(cfg.eval.verifier).is_dir():
            raise FileNotFoundError(f"eval.verifier={cfg.eval.verifier!r} is not a directory (the tiny world's verifier/, or '' for none)")
        from world.verifier import load_verifier

        verifier = load_verifier(cfg.eval.verifier)
    return train, evals, verifier


def connect(cfg: NFTJobConfig) -> None:
    """Attach to the job's cluster under `ray job submit` (RAY_ADDRESS is set), join cluster.address, or
    start a local Ray with cluster.num_cpus logical CPUs."""
    if ray.is_initialized():
        return
    env = {"env_vars": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}}
    # Actors' output stays in Ray's session logs (/tmp/ray/session_latest/logs): forwarded, it arrives
    # late and would follow the summary line. Their exceptions still reach the driver with tracebacks.
    if cfg.cluster.address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=cfg.cluster.address or None, log_to_driver=False)
    else:
        ray.init(num_cpus=cfg.cluster.num_cpus, include_dashboard=False, runtime_env=env, log_to_driver=False)


def run(raw: DictConfig, overrides: list[str]) -> dict:
    """The job on a composed config; `overrides` are the command line's (resume checks them)."""
    if raw.resume:
        raw = resumed_config(raw, overrides)
    cfg: NFTJobConfig = OmegaConf.to_object(raw)  # every field validated here
    run_dir = Path(cfg.run_dir).expanduser().resolve()  # absolute: a submitted job runs from a temporary copy
    checkpoint = latest_checkpoint(run_dir / CHECKPOINTS) if cfg.resume else None
    if cfg.resume and checkpoint is None:
        raise FileNotFoundError(f"resume={cfg.resume!r} holds no complete checkpoint under checkpoints/")
    train_prompts, eval_prompts, verifier = check_inputs(cfg)
    if not cfg.resume:
        start_run_dir(str(run_dir), raw)
    connect(cfg)
    trainer = NFTTrainer(cfg, run_dir, train_prompts, eval_prompts, verifier)
    try:
        if checkpoint is not None:
            trainer.restore(checkpoint)
        return trainer.fit()
    finally:
        trainer.shutdown()


@hydra.main(config_path="../configs", config_name="nft", version_base=None)
def main(raw: DictConfig) -> None:
    print(json.dumps(run(raw, list(HydraConfig.get().overrides.task))))


if __name__ == "__main__":
    main()
