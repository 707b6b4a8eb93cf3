"""The tiny world's preference pairs for a latent reward model, from two sources (as HPDv3 mixes real and
generated images):

- `hard_negative`: a rendered scene that satisfies the prompt against one rendered for the prompt's hard
  negative (one colour, count, position or digit changed), the same negatives the preference reward was
  finetuned on, turned from caption pairs into image pairs. The labels are the truth, as human votes
  are meant to be; held-out pairs of this kind (test digits, another seed) are what accuracy is read on.
- `generated`: the generator's own samples for a training caption, ranked by the pixel preference
  reward, best against worst, second against second worst, ... (pairs closer than `margin` dropped):
  the images a reward reads during RL, ranked within a prompt as group advantages rank them.
"""

import numpy as np
import torch

from diffusion.flow_model import FlowModel
from diffusion.sampling import SamplerConfig
from rollout.generation import expand_prompts, generate_and_score
from value.preference_pairs import PreferencePairs
from value.reward_model import RewardModel
from world.clip import captioned_scenes, hard_negative
from world.prompts import PromptSpec, satisfies, scene_for
from world.scenes import CANVAS, DigitBank, Scene, render_batch


def hard_negative_scenes(n: int, rng: np.random.Generator) -> tuple[list[PromptSpec], list[Scene], list[Scene]]:
    """n captions, a scene satisfying each, and a scene for its hard negative that fails it."""
    specs, chosen, rejected = [], [], []
    while len(specs) < n:
        for scene, spec in captioned_scenes(n - len(specs), rng):
            other = scene_for(hard_negative(spec, scene, rng), rng)
            if not satisfies(spec, other.cells):  # a counting negative can still hold the asked-for objects
                specs.append(spec)
                chosen.append(scene)
                rejected.append(other)
    return specs, chosen, rejected


@torch.no_grad()
def hard_negative_pairs(model: FlowModel, n: int, *, split: str, seed: int, batch_size: int = 256) -> PreferencePairs:
    """n pairs (prompt, its scene, a scene for its hard negative that fails it), rendered with `split`'s
    digits and encoded by `model`'s VAE."""
    rng = np.random.default_rng(seed)
    bank = DigitBank(0)  # the world's one split of the digits (train / val / test by image)
    specs, chosen, rejected = hard_negative_scenes(n, rng)
    prompts = [spec.text() for spec in specs]
    device, dtype = model.transformer.device, model.transformer.dtype

    def encode(scenes) -> torch.Tensor:
        images = render_batch(scenes, bank, split, rng)
        return torch.cat([model.encode(x.to(device, dtype)).float().cpu() for x in images.split(batch_size)])

    return PreferencePairs(prompts, encode(chosen), encode(rejected), ["hard_negative"] * n)


@torch.no_grad()
def generated_pairs(model: FlowModel, reward: RewardModel, prompts: list[str], *, samples_per_prompt: int,
                    sampler: SamplerConfig, margin: float, seed: int, batch_size: int = 256) -> PreferencePairs:
    """Per prompt, `samples_per_prompt` samples ranked by `reward`: the k-th best against the k-th worst."""
    expanded, seeds = expand_prompts(prompts, samples_per_prompt, seed)
    samples = generate_and_score(model, reward, expanded, seeds, sampler=sampler, height=CANVAS, width=CANVAS, batch_size=batch_size)
    chosen, rejected, kept = [], [], []
    for g, prompt in enumerate(prompts):
        rows = torch.arange(g * samples_per_prompt, (g + 1) * samples_per_prompt)
        order = rows[samples.rewards[rows].argsort(descending=True)]
        for k in range(samples_per_prompt // 2):
            w, l = order[k], order[-1 - k]
            if samples.rewards[w] - samples.rewards[l] > margin:
                chosen.append(samples.latents[w])
                rejected.append(samples.latents[l])
                kept.append(prompt)
    if not kept:
        raise ValueError(f"no generated pair is more than margin={margin} apart in reward; lower the margin")
    return PreferencePairs(kept, torch.stack(chosen), torch.stack(rejected), ["generated"] * len(kept))
