"""How good a value model is, measured two ways.

- Fidelity (StitchVM's Table 5; the tiny world's test scenes, `world.fidelity`): noised latents read
  through `stitched_reader`, and beside them a training-free reference (`tweedie_reader`), which says
  how much of the clean model's accuracy survives the latent and the noise at all.
- Calibration against the true value (the paper does not report it): for latents z_t from base-model
  trajectories, the truth is the mean reward of many posterior rollouts from z_t (`MonteCarloValue`);
  per t, Spearman, Pearson and MSE of each estimator against it, and, where prompts repeat, the mean
  Spearman among one prompt's latents: what a group advantage or a particle filter reads, since a
  value's errors shared by a prompt's latents cancel there.
"""

import numpy as np
import torch

from diffusion.flow_model import FlowModel
from diffusion.sampling import SamplerConfig, sample
from value.baselines import MonteCarloValue, TweedieValue
from value.stitched import StitchedValue
from value.value_model import ValueModel


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the ranks (ties broken by order; scores here are continuous)."""
    return pearson(a.argsort().argsort().float(), b.argsort().argsort().float())


class NoisedReader:
    """A reader of noisy latents used as a reward on clean images: encode, noise to t with fixed per-call
    noise (the same images get the same z_t for every caption), `read` z_t once per image batch, then
    `score` what it read against the captions. Fits `world.clip`'s accuracy functions, which score one
    image batch against caption after caption."""

    def __init__(self, read, score, backbone: FlowModel, t: float, seed: int):
        self.read, self.score, self.backbone, self.t, self.seed = read, score, backbone, t, seed
        self._images: torch.Tensor | None = None
        self._read = None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        if images is not self._images:
            z0 = self.backbone.encode(images)
            eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(self.seed)).to(z0)
            z_t = (1 - self.t) * z0 + self.t * eps
            self._images, self._read = images, self.read(z_t, torch.full((z0.shape[0],), self.t).to(z0))
        return self.score(self._read, prompts)


def value_reader(value: ValueModel, backbone: FlowModel, t: float, seed: int) -> NoisedReader:
    """Any value V(z_t, t, caption), run whole once per caption (a prompted stitched value, a latent reward)."""
    return NoisedReader(lambda z, t_: (z, t_), lambda read, prompts: value(*read, prompts), backbone, t, seed)


def stitched_reader(value: StitchedValue, backbone: FlowModel, t: float, seed: int) -> NoisedReader:
    """The stitched value. Under the null prompt its image embedding does not depend on the caption, so
    it is read once; prompted features read each caption, so the whole value runs once per caption."""
    if value.features.prompted:
        return value_reader(value, backbone, t, seed)
    return NoisedReader(lambda z, t_: value.embed(z, t_, [""] * z.shape[0]), value.reward.score_embedding,
                        backbone, t, seed)


def tweedie_reader(reward, backbone: FlowModel, t: float, seed: int) -> NoisedReader:
    """The training-free reference: the null-prompt `TweedieValue`'s decoded one-step estimate, which the
    clean reward scores against each caption. The null prompt, as the stitched value's backbone reads: a
    caption-conditioned pass would denoise toward each candidate caption. At t = 0 it is the VAE round
    trip, what the clean reward keeps through the latent alone."""
    tweedie = TweedieValue(backbone, reward, prompted=False)
    return NoisedReader(lambda z, t_: tweedie.estimate(z, t_, [""] * z.shape[0]), reward, backbone, t, seed)


@torch.no_grad()
def trajectory_latents(model: FlowModel, prompts: list[str], *, ts: list[float], num_steps: int, latent_shape,
                       cfg_scale: float, seed: int) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Base-model ODE trajectories, one per prompt -> ({step k: z at times[k], for the k whose time is
    nearest each requested t}, times)."""
    times = model.schedule(num_steps, *latent_shape[1:])
    cond, null = model.conditions(prompts, cfg_scale)
    trajectory = sample(
        model, cond, times=times, seeds=[seed + k for k in range(len(prompts))],
        latent_shape=latent_shape, config=SamplerConfig(num_steps=num_steps, cfg_scale=cfg_scale), null_cond=null,
    )
    steps = sorted({int((times - t).abs().argmin()) for t in ts})
    return {k: trajectory.latents[k] for k in steps}, times


def within_prompt_spearman(guess: torch.Tensor, truth: torch.Tensor, prompts: list[str]) -> float | None:
    """The mean over prompts with at least 3 latents of the Spearman among that prompt's latents."""
    groups: dict[str, list[int]] = {}
    for k, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(k)
    values = [spearman(guess[idx], truth[idx]) for idx in map(torch.tensor, groups.values()) if len(idx) >= 3]
    return float(np.mean(values)) if values else None


def calibration(estimators: dict[str, ValueModel], truth: MonteCarloValue, latents: dict[int, torch.Tensor],
                times: torch.Tensor, prompts: list[str]) -> dict:
    """{"<t>": {name: {spearman, pearson, mse, spearman_within}}} for each estimator against the Monte
    Carlo truth (spearman_within: `within_prompt_spearman`, None when no prompt has 3 latents), plus the
    truth's own spread ("truth_std") and the standard error of its mean ("truth_sem")."""
    out = {}
    for k, z in latents.items():
        t = torch.full((z.shape[0],), times[k].item())
        samples = truth.samples(z, t, prompts)
        mean = samples.mean(0)
        row = {"truth_std": float(mean.std()), "truth_sem": float(samples.std(0).mean() / samples.shape[0] ** 0.5)}
        for name, estimator in estimators.items():
            with torch.no_grad():
                guess = estimator(z, t, prompts).float().cpu()
            row[name] = {"spearman": spearman(guess, mean), "pearson": pearson(guess, mean),
                         "mse": float(((guess - mean) ** 2).mean()),
                         "spearman_within": within_prompt_spearman(guess, mean, prompts)}
        out[f"{times[k].item():.3f}"] = row
    return out
