"""What the training entry points (launch/nft.py, launch/draft.py) share: resuming a run from its saved
config, checking every input before Ray starts, connecting to Ray, and running a trainer to the end."""

import json
import os
from pathlib import Path

import hydra
import ray
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from diffusion.checkpoint import latest_checkpoint
from diffusion.model_config import ModelConfig, check_model_files
from diffusion.weights_file import check_weights_path
from launch.prompt_file import read_prompt_file
from launch.run_dir import start_run_dir
from learner.job_config import JobConfig
from learner.trainer import CHECKPOINTS, Trainer
from rollout.actors import IN_PROCESS
from value.reward_config import RewardConfig
from value.stitched import CARD

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


def continue_or_start(raw: DictConfig, overrides: list[str], schema: type[JobConfig]) -> DictConfig:
    """resume=auto: continue run_dir from its latest checkpoint if it has one, else start it, so that the
    same command (re-submitted, or re-run after a crash) carries a run to its end. Refused when the
    command's settings differ from those the run was started with, or when run_dir is not given (the
    default is a new folder every time)."""
    given = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] for o in overrides if "=" in o}
    if "run_dir" not in given:
        raise ValueError("resume=auto continues the run in run_dir; give it (run_dir=/abs/path): the default is a new folder each time")
    run_dir = Path(raw.run_dir).expanduser().resolve()
    if latest_checkpoint(run_dir / CHECKPOINTS) is None:
        raw.resume = ""
        return raw
    saved = OmegaConf.load(run_dir / "config.yaml")
    differ = []
    for key in given.keys() - {*RESUME_MAY_CHANGE, "run_dir"}:
        theirs, mine = OmegaConf.select(saved, key, default=None), OmegaConf.select(raw, key, default=None)
        if not OmegaConf.is_config(mine) and str(theirs) != str(mine):  # group choices (model=...) are not compared
            differ.append(f"{key}={theirs} there, {mine} here")
    if differ:
        raise ValueError(f"resume=auto: {run_dir} holds a run started with other settings ({'; '.join(differ)}); "
                         "continue it with its own command, or give another run_dir")
    raw.resume = str(run_dir)
    return resumed_config(raw, [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in RESUME_MAY_CHANGE], schema)


def _same_path(a: str, b: str) -> bool:
    return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def check_value_card(key: str, folder: str, model: ModelConfig, reward: RewardConfig) -> None:
    """Refuse a stitched value whose card names another backbone or reward than the job's: another family
    or reward kind, or a weights path that exists on this machine and is not the job's. (A recorded path
    absent here says nothing: the value may have been built elsewhere; the workers compare the weights.)"""
    card_path = Path(folder).expanduser() / CARD
    if not card_path.is_file():
        raise FileNotFoundError(f"{key}={folder!r} holds no {CARD}; point it at the value/ folder python launch/stitch.py exports")
    card = json.loads(card_path.read_text())
    recorded = OmegaConf.to_container(OmegaConf.create({k: card.get(k) or {} for k in ("backbone", "reward")}), resolve=True)
    for what, mine, setting, kinds in (("backbone", model, "model", ("family", "init")),
                                       ("reward", reward, "the reward term's model", ("kind", "arch"))):
        theirs = recorded[what]
        differ = [f for f in kinds if f in theirs and theirs[f] != getattr(mine, f)]
        path = theirs.get("path", "")
        if path and mine.path and Path(path).expanduser().exists() and not _same_path(path, mine.path):
            differ.append("path")
        if differ:
            listed = ", ".join(f"{f}={theirs[f]!r} (this job: {getattr(mine, f)!r})" for f in differ)
            raise ValueError(f"{key}={folder!r} was built for another {what}: {listed}; point {key} at a value built for "
                             f"this job's {setting} (python launch/stitch.py), or run the job with the {what} it was built for")


def check_inputs(cfg: JobConfig) -> tuple[list[str], list[str], object]:
    """Prompts, the verifier, every weights file the job reads (present, its header whole, a model folder's
    configs against its weights' shapes), and that every stitched value was built for the job's model and
    reward: before the run directory is written or any actor starts."""
    for key, path in cfg.weight_paths().items():
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(f"{key}={path!r} does not exist")
        if key == "model.path":
            check_model_files(cfg.model)
        else:
            check_weights_path(path, what=key)
    for key, folder in cfg.value_paths().items():
        (term,) = cfg.rewards.values()
        check_value_card(key, folder, cfg.model, term.model)
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
    start a local Ray with cluster.num_cpus logical CPUs. In process (cluster.mode=in_process): nothing."""
    if ray.is_initialized() or cfg.cluster.mode == IN_PROCESS:
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
    if raw.resume == "auto":
        raw = continue_or_start(raw, overrides, schema)
    elif raw.resume:
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
    except ray.exceptions.RayActorError as err:  # a learner (a rollout worker is restarted and asked again)
        raise RuntimeError(lost_actor_message(trainer.name, run_dir, job.step, err)) from err
    finally:
        job.shutdown()


def lost_actor_message(job: str, run_dir: Path, step: int, err: Exception) -> str:
    """What a user reads when a process of the run died: where the run can continue from, and how."""
    last = latest_checkpoint(run_dir / CHECKPOINTS)
    head = (f"a process of the run died after step {step} ({type(err).__name__}: a learner's, or a rollout worker's "
            f"beyond rollout.max_restarts)")
    if last is None:
        return f"{head}; the run has no checkpoint yet: start it again with the same command"
    return (f"{head}; its last checkpoint is {last}. Continue with: python launch/{job}.py resume={run_dir} "
            "(under ray job submit, submit that command)")


def entry_point(config_name: str, schema: type[JobConfig], trainer: type[Trainer]):
    """(run, main) of a training script: run(raw, overrides) -> summary for callers that compose their own
    config (tests, benchmarks); main, the Hydra command line, printing the summary as its last line."""

    def run_job(raw: DictConfig, overrides: list[str]) -> dict:
        return run(raw, overrides, schema, trainer)

    @hydra.main(config_path=str(REPO / "configs"), config_name=config_name, version_base=None)
    def main(raw: DictConfig) -> None:
        print(json.dumps(run_job(raw, list(HydraConfig.get().overrides.task))))

    return run_job, main
