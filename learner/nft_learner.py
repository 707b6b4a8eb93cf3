"""`NFTLearner`: one rank of the DeepSpeed group that trains the policy with the DiffusionNFT loss.

A plain class (`learner/learner_group.py` makes it a Ray actor). Besides the DeepSpeed engine it keeps
three copies of the trainable weights: the old policy (the rollouts' sampler, an EMA of the trained
weights on the official schedule), the evaluation EMA, and the reference (the starting weights, for the
KL term; with LoRA that is the base model, since adapters start at zero). The old and reference
velocities are the same module run with those tensors swapped in (`torch.func.functional_call`), so
no second model is built. That needs whole parameters on every rank: ZeRO stages 0-2 (stage 3
partitions parameters and is refused).

Randomness: the timesteps and noise of a row come from (seed, step, the row's rollout seed), so a
step does the same thing whichever learner a row lands on and whether or not the run was resumed.
"""

import os
import socket
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from diffusion.bridge import bridge
from diffusion.conditioning import Conditioning
from diffusion.device import collective_backend
from diffusion.model_config import ModelConfig, build_flow_model
from diffusion.trainable import FinetuneConfig, make_trainable, trainable_weights
from learner.nft_loss import NFTLossConfig, ema_update, nft_loss, old_policy_decay
from rollout.batch import RolloutBatch


@dataclass(kw_only=True)
class LearnerConfig:
    """num_learners Ray actors forming one DeepSpeed group, each with num_cpus / num_gpus.

    micro_batch: rows per forward/backward. train_timesteps: of the rollout schedule's times (t > 0),
    how many each row trains at per step, drawn without replacement (the official code: 9 of 10).
    old_decay_rate / old_decay_max: the old policy's EMA decay min(rate * step, max).
    eval_ema_decay: the evaluation EMA, with the official warm-up min((1 + s) / (10 + s), decay).
    """

    num_learners: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    zero_stage: int = 2
    micro_batch: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    train_timesteps: int = 4
    old_decay_rate: float = 0.001
    old_decay_max: float = 0.5
    eval_ema_decay: float = 0.9

    def __post_init__(self):
        if self.num_learners < 1 or self.micro_batch < 1 or self.train_timesteps < 1:
            raise ValueError(
                f"learner.num_learners={self.num_learners}, learner.micro_batch={self.micro_batch} and "
                f"learner.train_timesteps={self.train_timesteps} must be at least 1"
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
    """What every rank builds: the model, what trains, the loss, and the shapes of a step."""

    model: ModelConfig
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    nft: NFTLossConfig = field(default_factory=NFTLossConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rows_per_step: int = 64  # the global batch: prompts per step x group size
    rollout_steps: int = 10
    height: int = 32
    width: int = 32
    seed: int = 0
    device: str = "cpu"


class VelocityField(nn.Module):
    """The flow model's velocity as a module forward, so DeepSpeed and functional_call can run it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z, t, prompt_embeds, pooled):
        return self.model.velocity(z, t, Conditioning(prompt_embeds, pooled))


def row_generator(seed: int, step: int, row_seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, row_seed]).generate_state(1)[0]))


def _on_cpu(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: w.detach().cpu().clone() for n, w in weights.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class NFTLearner:
    def __init__(self, setup: LearnerSetup, rank: int, world_size: int):
        self.setup_cfg, self.rank, self.world_size = setup, rank, world_size
        self.cfg = setup.learner
        if setup.rows_per_step % (world_size * self.cfg.micro_batch):
            raise ValueError(
                f"{setup.rows_per_step} rows per step do not split into {world_size} learners x micro-batches of "
                f"{self.cfg.micro_batch}; change learner.micro_batch or the prompts per step"
            )
        if setup.device == "cpu":
            os.environ["DS_ACCELERATOR"] = "cpu"  # before deepspeed is imported: no CUDA probing, gloo
        torch.set_num_threads(max(1, int(self.cfg.num_cpus)))

    def master_address(self) -> tuple[str, int]:
        """Rank 0's address and a free port on its node: the group's rendezvous."""
        import ray

        return ray.util.get_node_ip_address(), free_port()

    def setup(self, master_addr: str, master_port: int) -> int:
        """Join the process group and build the engine; returns the number of trainable weights."""
        os.environ.update(
            RANK=str(self.rank), WORLD_SIZE=str(self.world_size), LOCAL_RANK="0",
            MASTER_ADDR=master_addr, MASTER_PORT=str(master_port),
        )
        import deepspeed  # imported here so DS_ACCELERATOR is set first

        s = self.setup_cfg
        deepspeed.init_distributed(dist_backend=collective_backend(torch.device(s.device)))
        torch.manual_seed(s.seed)
        model = build_flow_model(s.model)
        make_trainable(model, s.finetune)
        model.train()
        self.field = VelocityField(model).to(s.device)
        params = list(trainable_weights(model).values())
        gas = s.rows_per_step // (self.world_size * self.cfg.micro_batch) * self.cfg.train_timesteps
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
        self.old = self._copy_trainable()
        self.ema = self._copy_trainable()
        self.ref = self._copy_trainable()
        C, h, w = model.latent_shape(s.height, s.width)
        self.train_times = model.schedule(s.rollout_steps, h, w)[:-1]  # the sampler's times with t > 0
        if self.cfg.train_timesteps > len(self.train_times):
            raise ValueError(
                f"learner.train_timesteps={self.cfg.train_timesteps} exceeds the rollout's {len(self.train_times)} steps"
            )
        return sum(p.numel() for p in params)

    # ---- weights -------------------------------------------------------------------------
    def _trainable(self) -> dict[str, nn.Parameter]:
        return trainable_weights(self.field.model)

    def _copy_trainable(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self._trainable().items()}

    def _velocity_with(self, weights: dict[str, torch.Tensor], *args) -> torch.Tensor:
        swapped = {f"model.transformer.{n}": w for n, w in weights.items()}
        return torch.func.functional_call(self.field, swapped, args)

    def publish(self) -> dict[str, torch.Tensor] | None:
        """The old policy (what rollouts sample with), on rank 0; other ranks return None. The group
        calls it on every rank, as a gather of partitioned weights would need (OpenRLHF's ZeRO-3 trap)."""
        return _on_cpu(self.old) if self.rank == 0 else None

    def eval_weights(self) -> dict[str, torch.Tensor] | None:
        return _on_cpu(self.ema) if self.rank == 0 else None

    def policy_weights(self) -> dict[str, torch.Tensor]:
        return _on_cpu(self._trainable())

    # ---- one optimizer step ----------------------------------------------------------------
    def _noise(self, shard: RolloutBatch, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: train_timesteps distinct times of the schedule strictly above the row's stop time
        (all t > 0 for a clean sample), and their noise. Returns t (K, N) and eps (K, N, C, h, w)."""
        K = self.cfg.train_timesteps
        ts, eps = [], []
        for row_seed, tau in zip(shard.seeds.tolist(), shard.times.tolist(), strict=True):
            g = row_generator(self.setup_cfg.seed, step, row_seed)
            above = self.train_times[self.train_times > tau + 1e-6]
            if len(above) < K:
                raise ValueError(
                    f"a rollout stopped at t={tau:.3f} leaves {len(above)} training times above it, fewer than "
                    f"learner.train_timesteps={K}; stop later in the schedule (rollout.horizon) or train at fewer"
                )
            ts.append(above[torch.randperm(len(above), generator=g)[:K]])
            eps.append(torch.randn((K, *shard.latents.shape[1:]), generator=g))
        return torch.stack(ts, 1), torch.stack(eps, 1)

    def train_step(self, shard: RolloutBatch, r: torch.Tensor, step: int) -> dict[str, float]:
        """One optimizer step on this rank's rows (r: their optimality probabilities), then the old-policy
        and EMA updates. step counts from 1. Returns this rank's mean loss terms."""
        device, mb = self.setup_cfg.device, self.cfg.micro_batch
        if len(shard) * self.world_size != self.setup_cfg.rows_per_step:
            raise ValueError(f"a shard of {len(shard)} rows on {self.world_size} learners; each step takes {self.setup_cfg.rows_per_step}")
        t_all, eps_all = self._noise(shard, step)
        z_all, tau_all, cond_all = shard.latents.to(device), shard.times.to(device), shard.cond.to(device)
        stats: dict[str, list[float]] = {"loss": [], "policy_loss": [], "kl": []}
        for start in range(0, len(shard), mb):
            rows = slice(start, start + mb)
            z, tau, cond, rr = z_all[rows], tau_all[rows], cond_all.index(rows), r[rows].to(device)
            for k in range(self.cfg.train_timesteps):
                t, eps = t_all[k, rows].to(device), eps_all[k, rows].to(device)
                z_t, target = bridge(z, tau, t, eps)  # tau = 0: z_t = (1 - t) x0 + t eps, target eps - x0
                args = (z_t, t, cond.prompt_embeds, cond.pooled)
                with torch.no_grad():
                    v_old = self._velocity_with(self.old, *args)
                    v_ref = self._velocity_with(self.ref, *args) if self.setup_cfg.nft.kl_weight > 0 else None
                v_theta = self.engine(*args)
                loss, parts = nft_loss(v_theta, v_old, target, t, rr, self.setup_cfg.nft, v_ref)
                self.engine.backward(loss)
                self.engine.step()  # steps the optimizer only at the accumulation boundary
                stats["loss"].append(loss.item())
                for key, value in parts.items():
                    stats[key].append(value)
        trained = [p.detach() for p in self._trainable().values()]
        ema_update(list(self.old.values()), trained, old_policy_decay(step, self.cfg.old_decay_rate, self.cfg.old_decay_max))
        ema_update(list(self.ema.values()), trained, min((1 + step) / (10 + step), self.cfg.eval_ema_decay))
        out = {k: float(np.mean(v)) for k, v in stats.items()}
        grad_norm = self.engine.get_global_grad_norm()
        out["grad_norm"] = float(grad_norm) if grad_norm is not None else float("nan")
        return out

    # ---- checkpoints -----------------------------------------------------------------------
    def _base_optimizer(self):
        """The torch AdamW under DeepSpeed's wrapper (ZeRO 1/2: it steps this rank's fp32 partition)."""
        return getattr(self.optimizer, "optimizer", self.optimizer)

    def save(self, folder: str) -> None:
        """Write this rank's part of a checkpoint into `folder` (the controller makes it atomic)."""
        opt = self._base_optimizer()
        tensors = {}
        for gi, group in enumerate(opt.param_groups):
            for pi, p in enumerate(group["params"]):
                tensors[f"g{gi}.p{pi}.param"] = p.detach().cpu().contiguous()
                for key, value in opt.state.get(p, {}).items():
                    tensors[f"g{gi}.p{pi}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        save_file(tensors, os.path.join(folder, f"optimizer_rank{self.rank}.safetensors"))
        if self.rank == 0:
            for name, weights in (("policy", self.policy_weights()), ("old", self.old), ("ema", self.ema), ("ref", self.ref)):
                save_file({n: w.detach().cpu().contiguous() for n, w in weights.items()}, os.path.join(folder, f"{name}.safetensors"))

    @torch.no_grad()
    def load(self, folder: str) -> None:
        """Restore weights, old policy, EMA, reference and this rank's optimizer state."""
        path = os.path.join(folder, f"optimizer_rank{self.rank}.safetensors")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: the checkpoint was written by fewer learners; resume with the run's learner.num_learners"
            )
        weights = {name: load_file(os.path.join(folder, f"{name}.safetensors")) for name in ("policy", "old", "ema", "ref")}
        for name, p in self._trainable().items():
            p.copy_(weights["policy"][name])
        for name in ("old", "ema", "ref"):
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
                keys = [k.split(".", 2)[2] for k in saved if k.startswith(f"g{gi}.p{pi}.") and not k.endswith(".param")]
                opt.state[p] = {k: saved[f"g{gi}.p{pi}.{k}"].clone() for k in keys}
