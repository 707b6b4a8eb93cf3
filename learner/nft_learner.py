"""`NFTLearner`: one rank of the DeepSpeed group that trains the policy with the DiffusionNFT loss.

Besides the copies every learner keeps (`learner/learner.py`: evaluation EMA, reference) it keeps the
old policy: the rollouts' sampler, an EMA of the trained weights on the official schedule, run by
swapping its tensors into the same module. The reference is the starting weights, for the KL term
(with LoRA that is the base model, since adapters start at zero).

Randomness: the timesteps and noise of a row come from (seed, step, the row's rollout seed), so a
step does the same thing whichever learner a row lands on and whether or not the run was resumed.
"""

from dataclasses import dataclass, field

import torch

from diffusion.bridge import bridge
from diffusion.flow_model import FlowModel
from learner.learner import Learner, LearnerSetup, on_cpu, row_generator
from learner.nft_loss import NFTLossConfig, ema_update, nft_loss, old_policy_decay
from rollout.batch import BatchRefs, RolloutBatch


@dataclass(kw_only=True)
class NFTSetup(LearnerSetup):
    """rows_per_step: prompts per step x group size; rollout_steps: the rollout sampler's steps (the
    training times are its times with t > 0)."""

    nft: NFTLossConfig = field(default_factory=NFTLossConfig)
    rollout_steps: int = 10


@dataclass
class TrainItems:
    """A step's (row, time) pairs on one rank, in row order: row (M,) indices into the shard, t (M,),
    eps (M, C, h, w), weight (M,) = 1 / (the row's count x the shard's rows), so the summed weighted
    loss is the mean over rows of the mean over each row's times (the official batch mean when every
    row trains at as many times)."""

    row: torch.Tensor
    t: torch.Tensor
    eps: torch.Tensor
    weight: torch.Tensor

    def __len__(self) -> int:
        return len(self.row)


def times_per_row(n_above: int, fraction: float) -> int:
    """The official count: int(num_steps * timestep_fraction) of a full rollout's times, here of those
    above the row's stop, at least one."""
    return max(1, int(fraction * n_above))


class NFTLearner(Learner):
    COPIES = ("old", "ema", "ref")

    def accumulation_steps(self) -> int:
        # A step's backward passes follow the rows' stops, so the boundary is set by hand (train_step);
        # DeepSpeed's count only has to be consistent with the batch sizes it is given.
        return 1

    def prepare(self, model: FlowModel) -> None:
        s = self.setup_cfg
        C, h, w = model.latent_shape(s.height, s.width)
        self.train_times = model.schedule(s.rollout_steps, h, w)[:-1]  # the sampler's times with t > 0

    def publish(self) -> dict[str, torch.Tensor] | None:
        """The old policy (what rollouts sample with), on rank 0; called on every rank, as eval_weights."""
        return on_cpu(self.old) if self.rank == 0 else None

    # ---- one optimizer step ----------------------------------------------------------------
    def items(self, shard: RolloutBatch, step: int) -> TrainItems:
        """Per row: `times_per_row` distinct times of the schedule strictly above its stop (a seeded
        permutation's first), and their noise; drawn from (seed, step, the row's seed) alone."""
        rows, ts, eps, weight = [], [], [], []
        for k, (row_seed, tau) in enumerate(zip(shard.seeds.tolist(), shard.times.tolist(), strict=True)):
            g = row_generator(self.setup_cfg.seed, step, row_seed)
            above = self.train_times[self.train_times > tau + 1e-6]
            if len(above) == 0:
                raise ValueError(f"a rollout stopped at t={tau:.3f} leaves no training time above it; stop later (rollout.horizon)")
            n = times_per_row(len(above), self.cfg.timestep_fraction)
            rows += [k] * n
            ts.append(above[torch.randperm(len(above), generator=g)[:n]])
            eps.append(torch.randn((n, *shard.latents.shape[1:]), generator=g))
            weight += [1.0 / (n * len(shard))] * n
        return TrainItems(torch.tensor(rows), torch.cat(ts), torch.cat(eps), torch.tensor(weight, dtype=torch.float64))

    def _passes(self, count: int) -> int:
        """The most micro-batches any rank has this step: every rank runs that many backward passes, as
        ZeRO-2 reduces gradients in each (the ranks' rows stop at different times)."""
        if self.world_size == 1:
            return count
        import torch.distributed as dist

        n = torch.tensor([count], device=self.device)
        dist.all_reduce(n, op=dist.ReduceOp.MAX)
        return int(n.item())

    def train_step(self, shard: RolloutBatch | BatchRefs, r: torch.Tensor, step: int) -> dict[str, float]:
        """One optimizer step on this rank's rows (r: their optimality probabilities; the rows themselves or
        their references in the object store), then the old-policy and EMA updates. step counts from 1.
        Returns this rank's mean loss terms and times per row."""
        shard = shard.fetch()
        device, mb = self.device, self.cfg.micro_batch
        if len(shard) * self.world_size != self.setup_cfg.rows_per_step:
            raise ValueError(f"a shard of {len(shard)} rows on {self.world_size} learners; each step takes {self.setup_cfg.rows_per_step}")
        items = self.items(shard, step)
        z_all, tau_all, cond_all = shard.latents.to(device), shard.times.to(device), shard.cond.to(device)
        cond_of = shard.cond_index()  # a row's entry of cond_all (one per distinct prompt)
        stats = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0}  # weighted as the loss: one row, one share
        chunks = [slice(start, start + mb) for start in range(0, len(items), mb)]
        passes = self._passes(len(chunks))
        for k in range(passes):
            # A rank with fewer chunks than another pads with one item at weight 0: a pass that adds nothing.
            sel = chunks[k] if k < len(chunks) else slice(0, 1)
            rows = items.row[sel]
            z, tau, cond, rr = z_all[rows], tau_all[rows], cond_all.index(cond_of[rows]), r[rows].to(device)
            t, eps = items.t[sel].to(device), items.eps[sel].to(device)
            weight = items.weight[sel].to(device) if k < len(chunks) else torch.zeros(1, device=device, dtype=torch.float64)
            z_t, target = bridge(z, tau, t, eps)  # tau = 0: z_t = (1 - t) x0 + t eps, target eps - x0
            args = (z_t, t, cond.prompt_embeds, cond.pooled)
            with torch.no_grad():
                v_old = self._velocity_with(self.old, *args)
                v_ref = self._velocity_with(self.ref, *args) if self.setup_cfg.nft.kl_weight > 0 else None
            v_theta = self.engine(*args)
            per_sample, parts = nft_loss(v_theta, v_old, target, t, rr, self.setup_cfg.nft, v_ref)
            weight = weight.to(per_sample.dtype)
            loss = (per_sample * weight).sum()
            self.engine.set_gradient_accumulation_boundary(k == passes - 1)  # one optimizer step, after the last pass
            self.engine.backward(loss, scale_wrt_gas=False)  # the weights already average
            self.engine.step()
            for key, value in (("loss", per_sample.detach()), *parts.items()):
                stats[key] += (value * weight).sum().item()
        trained = [p.detach() for p in self._trainable().values()]
        ema_update(list(self.old.values()), trained, old_policy_decay(step, self.cfg.old_decay_rate, self.cfg.old_decay_max))
        self._update_eval_ema(step)
        return {**stats, "grad_norm": self._grad_norm(), "times_per_row": len(items) / len(shard)}
