"""What the training entry points (launch/nft.py, launch/draft.py) share: resuming a run from its saved
config, checking every input before Ray starts, connecting to Ray, and running a trainer to the end."""

import os
from pathlib import Path

import ray
from omegaconf import DictConfig, OmegaConf

from diffusion.atomic_folder import latest_checkpoint
from launch.prompt_file import read_prompt_file
from launch.run_dir import start_run_dir
from learner.job_config import JobConfig
from learner.trainer import CHECKPOINTS, Trainer

REPO = Path(__file__).resolve().parents[1]
RESUME_MAY_CHANGE = ("resume", "train.steps")


def resumed_config(raw: DictConfig, overrides: list[str], schema: type[JobConfig]) -> DictConfig:
    """The run's saved config with only train.steps taken from the command line (`overrides`)."""
    run_dir = Path(raw.resume).expanduser().resolve()
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"resume={raw.resume!r}: {saved} does not exist; point resume at a run directory of this job")
    changed = [o.split("=")[0].lstrip("+~") for o in overrides]
    extra = [k for k in changed if k not in RESUME_MAY_CHANGE]
    if extra:
        raise ValueError(f"resume continues the run's saved config; only {RESUME_MAY_CHANGE} may be given, not {extra}")
    cfg = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(saved))
    cfg.train.steps = raw.train.steps if "train.steps" in changed else cfg.train.steps
    cfg.resume, cfg.run_dir = str(run_dir), str(run_dir)
    return cfg


def check_inputs(cfg: JobConfig) -> tuple[list[str], list[str], object]:
    """Prompts, the verifier, and that every weights path exists: before any actor starts."""
    for key, path in cfg.weight_paths().items():
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(f"{key}={path!r} does not exist")
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


def connect(cfg: JobConfig) -> None:
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


def run(raw: DictConfig, overrides: list[str], schema: type[JobConfig], trainer: type[Trainer]) -> dict:
    """The job on a composed config; `overrides` are the command line's (resume checks them)."""
    if raw.resume:
        raw = resumed_config(raw, overrides, schema)
    cfg: JobConfig = OmegaConf.to_object(raw)  # every field validated here
    run_dir = Path(cfg.run_dir).expanduser().resolve()  # absolute: a submitted job runs from a temporary copy
    checkpoint = latest_checkpoint(run_dir / CHECKPOINTS) if cfg.resume else None
    if cfg.resume and checkpoint is None:
        raise FileNotFoundError(f"resume={cfg.resume!r} holds no complete checkpoint under checkpoints/")
    train_prompts, eval_prompts, verifier = check_inputs(cfg)
    if not cfg.resume:
        start_run_dir(str(run_dir), raw)
    connect(cfg)
    job = trainer(cfg, run_dir, train_prompts, eval_prompts, verifier)
    try:
        if checkpoint is not None:
            job.restore(checkpoint)
        return job.fit()
    finally:
        job.shutdown()
