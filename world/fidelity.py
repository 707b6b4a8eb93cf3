"""The stitcher's fidelity report on the tiny world (StitchVM's Table 5): on test scenes noised to t, does the
value still do the reward model's own job, zero-shot classification and ranking a caption above its hard
negative, next to the clean reward model on the clean images; and the rank correlation of its scores with
the clean reward's. Beside each, the same metrics of the training-free `tweedie_reader`."""

import numpy as np
import torch

from diffusion.flow_model import FlowModel
from stitching.reports import NoisedReader, spearman, stitched_reader, tweedie_reader, value_reader
from value.stitched import StitchedValue
from value.value_model import ValueModel
from world import clip as world_clip
from world.scenes import DigitBank, render_batch


def _accuracies(reward, bank, n: int, seed: int) -> dict:
    return {"zero_shot_acc": world_clip.zero_shot_acc(reward, bank, "test", n, seed=seed + 1),
            "pairwise_acc": world_clip.pairwise_acc(reward, bank, "test", n, seed=seed + 2)}


@torch.no_grad()
def fidelity(value: StitchedValue, reward, backbone: FlowModel, *, ts: list[float], n: int, seed: int,
             others: dict[str, ValueModel] | None = None) -> dict:
    """Tiny-world test scenes. Returns {"clean": {zero_shot_acc, pairwise_acc, "vae_round_trip": {the
    same}}, "<t>": {zero_shot_acc, pairwise_acc, spearman_vs_clean, "tweedie": {the same}}}: the
    stitched value's, and beside it `tweedie_reader`'s, the reference that no training went into; each of
    `others` (e.g. a latent reward) adds its row under its name, at every t and clean."""
    others = others or {}
    bank = DigitBank(seed)
    out = {"clean": {**_accuracies(reward, bank, n, seed),
                     "vae_round_trip": _accuracies(tweedie_reader(reward, backbone, 0.0, seed + 4), bank, n, seed),
                     **{name: _accuracies(value_reader(v, backbone, 0.0, seed + 4), bank, n, seed) for name, v in others.items()}}}
    rng = np.random.default_rng(seed + 3)
    pairs = world_clip.captioned_scenes(n, rng)
    images, captions = render_batch([s for s, _ in pairs], bank, "test", rng), [p.text() for _, p in pairs]
    clean_scores = reward(images, captions).cpu()

    def row(reader: NoisedReader) -> dict:
        spearman_vs_clean = spearman(reader(images, captions).cpu(), clean_scores)
        return {**_accuracies(reader, bank, n, seed), "spearman_vs_clean": spearman_vs_clean}

    for t in ts:
        out[f"{t:g}"] = {**row(stitched_reader(value, backbone, t, seed + 4)),
                         "tweedie": row(tweedie_reader(reward, backbone, t, seed + 4)),
                         **{name: row(value_reader(v, backbone, t, seed + 4)) for name, v in others.items()}}
    return out
