"""`Learner`: one rank of the DeepSpeed group that trains the generator; what every objective shares.

A plain class (`learner/learner_group.py` makes it a Ray actor). It builds the model and the DeepSpeed
engine, keeps named copies of the trainable weights (`COPIES`: the evaluation EMA, the reference =
the starting weights, and what a subclass adds), runs the model with a copy swapped in
(`torch.func.functional_call`, so no second model is built), and saves and loads all of it. Whole
parameters on every rank: ZeRO stages 0-2 (stage 3 partitions parameters and is refused).

Subclasses (`NFTLearner`, `DraftLearner`) say how many micro-batches a step accumulates, what else
they build, and what one optimizer step does.
"""

import os
import socket
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from diffusion.checkpoint import load_optimizer_tensors, optimizer_tensors
from diffusion.conditioning import Conditioning
from diffusion.device import collective_backend, resolve_device
from diffusion.flow_model import FlowModel
from diffusion.model_config import ModelConfig, build_flow_model
from diffusion.trainable import FinetuneConfig, make_trainable, trainable_weights
from learner.nft_loss import ema_update


@dataclass(kw_only=True)
class LearnerConfig:
    """num_learners Ray actors forming one DeepSpeed group, each with num_cpus / num_gpus.

    micro_batch: rows per forward/backward (DiffusionNFT: (row, time) pairs). timestep_fraction
    (DiffusionNFT, the official semantics): each row trains at max(1, int(fraction * n)) of the n rollout
    schedule times strictly above its stop (all t > 0 for a full rollout; 0.99 of 10: 9), drawn without
    replacement, all in one optimizer step. old_decay_rate / old_decay_max (DiffusionNFT): the old policy's EMA decay
    min(rate * step, max). eval_ema_decay: the evaluation EMA, with the official warm-up
    min((1 + s) / (10 + s), decay).
    """

    num_learners: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    zero_stage: int = 2
    micro_batch: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    timestep_fraction: float = 0.99
    old_decay_rate: float = 0.001
    old_decay_max: float = 0.5
    eval_ema_decay: float = 0.9

    def __post_init__(self):
        if self.num_learners < 1 or self.micro_batch < 1:
            raise ValueError(
                f"learner.num_learners={self.num_learners} and learner.micro_batch={self.micro_batch} must be at least 1"
            )
        if not 0 < self.timestep_fraction <= 1:
            raise ValueError(
                f"learner.timestep_fraction={self.timestep_fraction} must lie in (0, 1]: the share of the sampler's times "
                "above a row's stop it trains at (the official 0.99 trains 9 of 10)"
            )
        if self.zero_stage not in (0, 1, 2):
            raise ValueError(
                f"learner.zero_stage={self.zero_stage}: use 0, 1 or 2. Stage 3 partitions the parameters, and the "
                "old-policy and reference passes need them whole"
            )
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise ValueError(f"learner.num_cpus={self.num_cpus} must be > 0 and learner.num_gpus={self.num_gpus} >= 0")


@dataclass(kw_only=True)
class LearnerSetup:
    """What every rank builds: the model, what trains, and the shapes of a step (objectives add theirs)."""

    model: ModelConfig
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rows_per_step: int = 64  # the global batch
    height: int = 32
    width: int = 32
    seed: int = 0
    device: str = "cpu"


class VelocityField(nn.Module):
    """The flow model's velocity as a module forward, so DeepSpeed and functional_call can run it."""

    def __init__(self, model: FlowModel):
        super().__init__()
        self.model = model

    def forward(self, z, t, prompt_embeds, pooled):
        return self.model.velocity(z, t, Conditioning(prompt_embeds, pooled))


class Velocity:
    """.velocity(z, t, cond) over a forward(z, t, prompt_embeds, pooled): what the samplers call."""

    def __init__(self, forward):
        self.forward = forward

    def velocity(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.forward(z, t, cond.prompt_embeds, cond.pooled)


def row_generator(seed: int, step: int, row_seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, row_seed]).generate_state(1)[0]))


def on_cpu(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: w.detach().cpu().clone() for n, w in weights.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class Learner:
    COPIES: tuple[str, ...] = ("ema", "ref")

    def __init__(self, setup: LearnerSetup, rank: int, world_size: int):
        self.setup_cfg, self.rank, self.world_size = setup, rank, world_size
        self.cfg = setup.learner
        if setup.rows_per_step % (world_size * self.cfg.micro_batch):
            raise ValueError(
                f"{setup.rows_per_step} rows per step do not split into {world_size} learners x micro-batches of "
                f"{self.cfg.micro_batch}; change learner.micro_batch or the prompts per step"
            )
        # "auto" is resolved here, in the actor: cuda where Ray gave it a GPU (learner.num_gpus > 0), else cpu.
        self.device = resolve_device(setup.device)
        if self.device.type == "cpu":
            os.environ["DS_ACCELERATOR"] = "cpu"  # before deepspeed is imported: no CUDA probing, gloo
        torch.set_num_threads(max(1, int(self.cfg.num_cpus)))

    # ---- what an objective decides -------------------------------------------------------------
    def accumulation_steps(self) -> int:
        """Backward passes per optimizer step on this rank."""
        return self.setup_cfg.rows_per_step // (self.world_size * self.cfg.micro_batch)

    def prepare(self, model: FlowModel) -> None:
        """Build what the objective needs beside the engine (called once, at the end of setup)."""

    def train_step(self, *args) -> dict[str, float]:
        raise NotImplementedError

    def _step_on_own_rows(self, prompts: list[str], seeds: list[int], step: int, loss_of) -> dict[str, float]:
        """One optimizer step of an objective whose learners sample their own rows (DRaFT, AM, EAM): this rank's rows
        (a prompt and a noise seed each) in micro-batches, loss_of(rows, row_seeds, cond, null, micro_batch) ->
        (loss, parts) for each, micro_batch counted over all ranks; `self.null` (the encoded empty prompt or None)
        is set by the subclass's prepare. Returns this rank's mean parts and the gradient norm."""
        s, mb = self.setup_cfg, self.cfg.micro_batch
        if len(prompts) != len(seeds) or len(prompts) * self.world_size != s.rows_per_step:
            raise ValueError(f"{len(prompts)} prompts and {len(seeds)} seeds on {self.world_size} learners; each step takes {s.rows_per_step}")
        stats: dict[str, list[float]] = {}
        first = self.rank * (len(prompts) // mb)  # this rank's first micro-batch in the step
        for j, start in enumerate(range(0, len(prompts), mb)):
            rows = prompts[start : start + mb]
            with torch.no_grad():
                cond = self.field.model.encode_prompt(rows)
            null = self.null.index([0] * len(rows)) if self.null is not None else None
            loss, parts = loss_of(rows, seeds[start : start + mb], cond, null, first + j)
            self.engine.backward(loss)
            self.engine.step()  # steps the optimizer only at the accumulation boundary
            for key, value in parts.items():
                stats.setdefault(key, []).append(value)
        self._update_eval_ema(step)
        return {**{k: float(np.mean(v)) for k, v in stats.items()}, "grad_norm": self._grad_norm()}

    # ---- the group -------------------------------------------------------------------------------
    def master_address(self) -> tuple[str, int]:
        """Rank 0's address and a free port on its node: the group's rendezvous (in process: this machine)."""
        import ray

        return (ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"), free_port()

    def setup(self, master_addr: str, master_port: int) -> int:
        """Join the process group and build the engine; returns the number of trainable weights."""
        os.environ.update(
            RANK=str(self.rank), WORLD_SIZE=str(self.world_size), LOCAL_RANK="0",
            MASTER_ADDR=master_addr, MASTER_PORT=str(master_port),
        )
        import deepspeed  # imported here so DS_ACCELERATOR is set first

        s = self.setup_cfg
        deepspeed.init_distributed(dist_backend=collective_backend(self.device))
        torch.manual_seed(s.seed)
        model = build_flow_model(s.model)
        make_trainable(model, s.finetune)
        model.train()
        self.field = VelocityField(model).to(self.device)
        params = list(trainable_weights(model).values())
        gas = self.accumulation_steps()
        ds_config = {
            "train_micro_batch_size_per_gpu": self.cfg.micro_batch,
            "gradient_accumulation_steps": gas,
            "train_batch_size": self.cfg.micro_batch * gas * self.world_size,
            "optimizer": {"type": "AdamW", "params": {
                "lr": self.cfg.lr, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": self.cfg.weight_decay,
                "torch_adam": True,  # plain torch AdamW: no fused/CPU-Adam JIT build
            }},
            "gradient_clipping": self.cfg.grad_clip,
            "zero_optimization": {"stage": self.cfg.zero_stage},
            "steps_per_print": 10**9,
        }
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=self.field, model_parameters=params, config=ds_config)
        for name in self.COPIES:
            setattr(self, name, self._copy_trainable())
        self.prepare(self.field.model)
        return sum(p.numel() for p in params)

    # ---- weights -------------------------------------------------------------------------
    def _trainable(self) -> dict[str, nn.Parameter]:
        return trainable_weights(self.field.model)

    def _copy_trainable(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self._trainable().items()}

    def _velocity_with(self, weights: dict[str, torch.Tensor], *args) -> torch.Tensor:
        swapped = {f"model.transformer.{n}": w for n, w in weights.items()}
        # The transformers tie no weights; not searching for ties saves ~10 ms a call with LoRA's many modules.
        return torch.func.functional_call(self.field, swapped, args, tie_weights=False)

    def _update_eval_ema(self, step: int) -> None:
        trained = [p.detach() for p in self._trainable().values()]
        ema_update(list(self.ema.values()), trained, min((1 + step) / (10 + step), self.cfg.eval_ema_decay))

    def _grad_norm(self) -> float:
        grad_norm = self.engine.get_global_grad_norm()
        return float(grad_norm) if grad_norm is not None else float("nan")

    def eval_weights(self) -> dict[str, torch.Tensor] | None:
        """The evaluation EMA, on rank 0; other ranks return None. The group calls it on every rank, as a
        gather of partitioned weights would need (OpenRLHF's ZeRO-3 trap)."""
        return on_cpu(self.ema) if self.rank == 0 else None

    def policy_weights(self) -> dict[str, torch.Tensor]:
        return on_cpu(self._trainable())

    # ---- checkpoints -----------------------------------------------------------------------
    def _base_optimizer(self):
        """The torch AdamW under DeepSpeed's wrapper (ZeRO 1/2: it steps this rank's fp32 partition)."""
        return getattr(self.optimizer, "optimizer", self.optimizer)

    def save(self, folder: str) -> None:
        """Write this rank's part of a checkpoint into `folder` (the controller makes it atomic)."""
        opt = self._base_optimizer()
        partitions = {f"g{gi}.p{pi}.param": p.detach().cpu().contiguous()
                      for gi, group in enumerate(opt.param_groups) for pi, p in enumerate(group["params"])}
        save_file({**partitions, **optimizer_tensors(opt)}, os.path.join(folder, f"optimizer_rank{self.rank}.safetensors"))
        if self.rank == 0:
            copies = {"policy": self.policy_weights(), **{name: getattr(self, name) for name in self.COPIES}}
            for name, weights in copies.items():
                save_file({n: w.detach().cpu().contiguous() for n, w in weights.items()}, os.path.join(folder, f"{name}.safetensors"))

    @torch.no_grad()
    def load(self, folder: str) -> None:
        """Restore the weights, every copy and this rank's optimizer state."""
        path = os.path.join(folder, f"optimizer_rank{self.rank}.safetensors")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: the checkpoint was written by fewer learners; resume with the run's learner.num_learners"
            )
        weights = {name: load_file(os.path.join(folder, f"{name}.safetensors")) for name in ("policy", *self.COPIES)}
        for name, p in self._trainable().items():
            p.copy_(weights["policy"][name])
        for name in self.COPIES:
            target = getattr(self, name)
            for n in target:
                target[n].copy_(weights[name][n])
        saved, opt = load_file(path), self._base_optimizer()
        for gi, group in enumerate(opt.param_groups):
            for pi, p in enumerate(group["params"]):
                stored = saved[f"g{gi}.p{pi}.param"]
                if stored.shape != p.shape:
                    raise ValueError(
                        f"optimizer partition g{gi}.p{pi} has shape {tuple(stored.shape)} in the checkpoint but "
                        f"{tuple(p.shape)} here: resume with the run's learner.num_learners and learner.zero_stage"
                    )
                p.copy_(stored)
        load_optimizer_tensors(opt, saved)
