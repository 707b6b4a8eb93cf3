"""StitchVM stage 2: distil the clean reward model into the stitched one on noisy latents.

Teacher: the frozen reward tower on the clean image (the paper's; `teacher="clean"`), or with
`teacher="tweedie"` on the base model's decoded one-step estimate D(z_t - t u(z_t)) under each image's
prompt. Student: the stitched value on z_t. Trained: the stitch (at `stitch_lr_mult` x the rate) and the
tower copy; the backbone and the teacher are frozen.

Why the one-step target (not in the paper): with the clean image the student regresses E[r(x0) | z_t]
from one draw x0 per noised latent, whose spread at high t swamps what tells one prompt's latents apart;
the one-step estimate is a function of z_t itself. Measured on the tiny world
(docs/results/2026-12-01-stitch.md): with a prompt-read (4, 1) stitch it lifts the Spearman among one
prompt's latents at t = .89 / .73 / .52 from .09 / .32 / .48 to .22 / .55 / .65.

t is logit-normal (centre-biased: both ends carry little signal). Losses (StitchVM App. D.1):
CLIP-like rewards: squared L2 between the L2-normalised embeddings + token_weight x the per-token MSE
of the last block's outputs; an aesthetic head: Smooth-L1 on tokens, normalised embeddings and scores.

Not in the paper, for CLIP-like rewards: + score_weight x the MSE between the student's and the
teacher's scores against a fixed caption set, over the variance of the teacher's. The embedding loss
weighs every direction of the embedding alike; the score reads only the directions the captions span,
and how images rank for one caption is what group advantages, particles and guidance use.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusion.checkpoint import latest_checkpoint
from stitching.checkpoint import load_training_state, save_training_state
from stitching.images import ImageBatch
from value.aesthetic import AestheticScore
from value.reward_model import RewardModel
from value.stitched import StitchedValue


TEACHERS = ("clean", "tweedie")


@dataclass(kw_only=True)
class DistillConfig:
    """lr: the tower's rate (the stitch's is stitch_lr_mult x); linear warm-up, then constant, as the
    paper states no decay. teacher: what the teacher reads, "clean" | "tweedie" (the one-step estimate
    with the base model's velocity at `teacher_cfg_scale`, which should be the sampler's)."""

    steps: int = 400
    batch: int = 32
    lr: float = 1e-4
    stitch_lr_mult: float = 5.0
    warmup_steps: int = 50
    weight_decay: float = 0.0
    token_weight: float = 1.0
    score_weight: float = 0.0
    score_captions: int = 512
    t_mean: float = 0.0
    t_std: float = 1.0
    checkpoint_every: int = 100
    seed: int = 0
    teacher: str = "clean"
    teacher_cfg_scale: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"distill.{name}={getattr(self, name)} must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"distill.lr={self.lr} must be positive")
        if self.teacher not in TEACHERS:
            raise ValueError(f"distill.teacher={self.teacher!r} is not one of {', '.join(TEACHERS)}")
        if self.score_weight < 0 or self.score_captions < 2:
            raise ValueError(f"distill.score_weight={self.score_weight} must be >= 0 and "
                             f"distill.score_captions={self.score_captions} at least 2")


def distill_loss(value: StitchedValue, teacher: RewardModel, images: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor,
                 prompts: list[str], token_weight: float, score_weight: float = 0.0,
                 caption_text: torch.Tensor | None = None) -> torch.Tensor:
    """images (B, 3, H, W) in [0, 1]: what the teacher reads for each noised latent z_t (B, C, h, w) at t
    (B,) (the clean image, or its one-step estimate); prompts: the images' own (prompted features read
    them). caption_text: the score term's normalised caption embeddings (K, E) (CLIP-like teachers, read
    when score_weight > 0)."""
    with torch.no_grad():
        tokens = teacher.tower.run_from(teacher.tokens_at(teacher.preprocess(images), 1), 1)
        embed = F.normalize(teacher.tower.pool(tokens), dim=-1)
    s_tokens = value.tower.run_from(value.tokens(z_t, t, prompts), value.j)
    s_embed = F.normalize(value.tower.pool(s_tokens), dim=-1)
    if isinstance(teacher, AestheticScore):
        score, s_score = teacher.score_embedding(embed, []), teacher.score_embedding(s_embed, [])
        return (token_weight * F.smooth_l1_loss(s_tokens, tokens) + F.smooth_l1_loss(s_embed, embed)
                + F.smooth_l1_loss(s_score, score))
    loss = (s_embed - embed).pow(2).sum(-1).mean() + token_weight * F.mse_loss(s_tokens, tokens)
    if score_weight:
        loss = loss + score_weight * caption_score_loss(s_embed, embed, caption_text)
    return loss


def caption_score_loss(s_embed: torch.Tensor, embed: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Normalised MSE of the cosines (B, K) of the student's and the teacher's normalised embeddings
    (B, E) against K normalised caption embeddings (K, E). The normaliser, the variance of the teacher's
    cosines over the batch (mean over captions), makes the weight independent of the reward's spread."""
    text = text.to(embed)
    target = embed @ text.T
    return F.mse_loss(s_embed @ text.T, target) / target.var(0).mean().clamp_min(1e-12)


def make_optimizer(value: StitchedValue, cfg: DistillConfig):
    groups = [
        {"params": list(value.stitch.parameters()), "lr": cfg.lr * cfg.stitch_lr_mult},
        {"params": list(value.tower.parameters()), "lr": cfg.lr},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / max(cfg.warmup_steps, 1)))
    return opt, sched


def distill(
    value: StitchedValue,
    teacher: RewardModel,
    encode,
    images: Callable[[int], ImageBatch],
    cfg: DistillConfig,
    *,
    checkpoint_dir: str | Path,
    captions: Sequence[str] = (),
    one_step=None,
    progress=None,
    log=None,
) -> dict:
    """Train for cfg.steps, resuming from the newest checkpoint in `checkpoint_dir` if there is one.

    encode: clean images -> latents (the backbone's VAE); images(step): the step's clean images and their
    prompts. The images and the noise of a step depend on the step alone, so a resumed run equals an
    uninterrupted one. captions: the score term's caption set (needed when cfg.score_weight > 0 and the
    teacher is CLIP-like). one_step(z_t, t, prompts) -> (B, 3, H, W): the decoded one-step estimate
    (`TweedieValue.estimate`), which the teacher reads when cfg.teacher == "tweedie".
    Returns {"loss_first", "loss_last", "steps", "resumed_from"}.
    """
    if cfg.teacher == "tweedie" and one_step is None:
        raise ValueError("distill.teacher=tweedie reads the base model's one-step estimate: pass one_step")
    caption_text = None
    if cfg.score_weight and not isinstance(teacher, AestheticScore):
        if len(captions) < 2:
            raise ValueError(f"distill.score_weight={cfg.score_weight} scores images against captions, but "
                             f"{len(captions)} were given; pass a caption set or set distill.score_weight=0")
        with torch.no_grad():  # the text tower is frozen: embed the captions once, not every step
            caption_text = teacher.text_embeddings(list(captions))
    opt, sched = make_optimizer(value, cfg)
    start, resumed = 0, None
    if (found := latest_checkpoint(checkpoint_dir)) is not None:
        start = load_training_state(found, value, opt, sched)
        resumed = str(found)
    value.train()
    losses: list[float] = []
    for step in range(start, cfg.steps):
        batch = images(step)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        with torch.no_grad():
            z0 = encode(batch.images)
            t = torch.sigmoid(cfg.t_mean + cfg.t_std * torch.randn(z0.shape[0], generator=gen)).to(z0)
            eps = torch.randn(z0.shape, generator=gen).to(z0)
            z_t = (1 - t.view(-1, 1, 1, 1)) * z0 + t.view(-1, 1, 1, 1) * eps
            seen = batch.images if cfg.teacher == "clean" else one_step(z_t, t, batch.prompts)
        loss = distill_loss(value, teacher, seen, z_t, t, batch.prompts, cfg.token_weight, cfg.score_weight,
                            caption_text)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"distillation loss is {loss.item()} at step {step}; lower distill.lr")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress is not None:
            progress.update(1)
        if log is not None:
            log({"step": step + 1, "distill/loss": losses[-1], "distill/lr": sched.get_last_lr()[1]})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(checkpoint_dir, step + 1, value, opt, sched)
    value.eval()
    return {
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "steps": cfg.steps,
        "resumed_from": resumed,
    }
