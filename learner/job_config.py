"""What the training jobs' configurations share (launch/nft.py, launch/draft.py), as typed dataclasses."""

from dataclasses import dataclass, field

from diffusion.device import check_device_name
from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from diffusion.trainable import FinetuneConfig
from learner.learner import LearnerConfig
from rollout.actors import IN_PROCESS, MODES, RAY
from rollout.worker import RolloutConfig
from value.weighted_reward import RewardTermConfig

WANDB_MODES = ("offline", "online", "disabled")


@dataclass(kw_only=True)
class TrainConfig:
    """steps: optimizer steps. Each step samples prompts_per_step prompts x group_size images (DiffusionNFT
    compares the images of a group: at least 2).
    max_staleness: how many policy versions a batch may lag the policy it trains (0: fully synchronous;
    k > 0 lets the next k batches be sampled while the learners train)."""

    steps: int = 100
    prompts_per_step: int = 16
    group_size: int = 4
    max_staleness: int = 0
    checkpoint_every: int = 50

    def __post_init__(self):
        if self.steps < 1 or self.prompts_per_step < 1 or self.checkpoint_every < 1:
            raise ValueError(
                f"train.steps={self.steps}, train.prompts_per_step={self.prompts_per_step} and "
                f"train.checkpoint_every={self.checkpoint_every} must be at least 1"
            )
        if self.group_size < 1:
            raise ValueError(f"train.group_size={self.group_size} must be at least 1")
        if self.max_staleness < 0:
            raise ValueError(f"train.max_staleness={self.max_staleness} must be >= 0 (0 is fully synchronous)")

    @property
    def rows_per_step(self) -> int:
        return self.prompts_per_step * self.group_size


@dataclass(kw_only=True)
class PromptConfig:
    """train_file / eval_file: one prompt per line; empty uses the tiny world's training prompts
    (num_train distinct ones, never a held-out evaluation prompt) and its evaluation prompts."""

    train_file: str = ""
    num_train: int = 1000
    eval_file: str = ""
    eval_per_family: int = 16  # the tiny world's held-out prompts per family (world.prompts.EVAL_PER_FAMILY)


@dataclass(kw_only=True)
class EvalConfig:
    """Every `every` steps (and before the first and after the last): full ODE sampling of the
    evaluation prompts with the EMA weights, scored by the training reward and, when `verifier` is set,
    the tiny world's verifier (never a training signal). 0 evaluates only before and after."""

    every: int = 25
    samples_per_prompt: int = 4
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=20))
    verifier: str = ""

    def __post_init__(self):
        if self.every < 0 or self.samples_per_prompt < 1:
            raise ValueError(f"eval.every={self.every} must be >= 0 and eval.samples_per_prompt={self.samples_per_prompt} >= 1")


@dataclass(kw_only=True)
class ClusterConfig:
    """mode: "ray" (rollout workers and learners are Ray actors) or "in_process" (they are objects in the
    driver's process, one learner, no Ray: one machine, debugging; configs/cluster/in_process.yaml).
    address: "" starts a local Ray (num_cpus logical CPUs) unless the process already runs inside a
    Ray job; "auto" or "host:port" joins a running cluster. timeout_s bounds every resource wait."""

    mode: str = RAY
    address: str = ""
    num_cpus: int = 4
    timeout_s: float = 300.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"cluster.mode={self.mode!r} is not one of {', '.join(MODES)}")


@dataclass(kw_only=True)
class LoggingConfig:
    wandb: str = "offline"
    project: str = "stitchrl"

    def __post_init__(self):
        if self.wandb not in WANDB_MODES:
            raise ValueError(f"logging.wandb={self.wandb!r} is not one of {WANDB_MODES}")


@dataclass(kw_only=True)
class JobConfig:
    """rewards: the training reward's named terms (a weighted sum). rollout: the rollout workers (DRaFT
    uses them only to evaluate). resume: a run directory to continue from its latest checkpoint (its
    saved config is used; only train.steps may change), or "auto": continue run_dir if it holds a checkpoint,
    else start it (the same command, run again, carries a run to its end). device: auto | cpu | cuda, resolved in each actor
    (auto: cuda where Ray gave the actor a GPU through learner.num_gpus / rollout.num_gpus)."""

    model: ModelConfig
    rewards: dict[str, RewardTermConfig]
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    height: int = 32
    width: int = 32
    seed: int = 0
    device: str = "cpu"
    run_dir: str = "runs/train"
    resume: str = ""

    def __post_init__(self):
        # Resolved in each actor, not here: the driver may sit on a node without the GPUs Ray hands the actors.
        check_device_name(self.device)
        if not self.rewards:
            raise ValueError("rewards is empty; name at least one reward term (e.g. rewards=tiny_pref)")
        if self.cluster.mode == IN_PROCESS and self.learner.num_learners != 1:
            raise ValueError(
                f"cluster.mode=in_process runs one learner in this process, not learner.num_learners="
                f"{self.learner.num_learners}; set learner.num_learners=1 (cluster=in_process does), or use Ray (cluster=local)"
            )
        rows, split = self.train.rows_per_step, self.learner.num_learners * self.learner.micro_batch
        if rows % split:
            raise ValueError(
                f"train.prompts_per_step x train.group_size = {rows} rows per step must divide by "
                f"learner.num_learners x learner.micro_batch = {split}"
            )
        if self.rollout.stop_window is not None and len(self.rewards) != 1:
            raise ValueError(f"rollout.horizon={self.rollout.horizon!r} scores with one value: give one reward term, not {sorted(self.rewards)}")

    def value_paths(self) -> dict[str, str]:
        """{config key: folder} of the stitched values the job reads (with `model` and its one reward term):
        the rollout workers' when rollout.horizon is partial (objectives add theirs)."""
        stitched = self.rollout.stop_window is not None and self.rollout.value.kind == "stitched"
        return {"rollout.value.path": self.rollout.value.path} if stitched else {}

    def weight_paths(self) -> dict[str, str]:
        """{config key: path} of every weights file or folder the job reads, checked before Ray starts."""
        paths = {f"rewards.{n}.model.path": t.model.path for n, t in self.rewards.items() if t.model.kind != "random_tiny_clip"}
        paths |= {f"rewards.{n}.model.head_path": t.model.head_path for n, t in self.rewards.items() if t.model.head_path}
        if self.model.init == "pretrained" and self.model.path.startswith(("/", ".", "~")):
            paths["model.path"] = self.model.path
        return {**paths, **self.value_paths()}
