"""The tiny world's rewards: a CLIP trained contrastively on scene captions (weak at binding, counting
and position, like real CLIP), and a preference model finetuned from it with hard negatives (the same
scene, a wrong colour, count, position or digit), the way HPSv2 is a finetuned CLIP. Both are open_clip
models saved in open_clip's hub layout, so `value.clip_score` reads them as it reads DFN's."""

import copy
from collections.abc import Callable

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from value.reward_model import RewardModel
from world.optim import one_cycle, take_step
from world.prompts import FAMILIES, RELATIONS, PromptSpec, sample_spec, satisfies, scene_for
from world.scenes import COLOUR_NAMES, DIGIT_NAMES, DigitBank, Scene, render_batch

CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 4, "width": 64, "patch_size": 4, "head_width": 32},
    # The real SimpleTokenizer (shipped in open_clip) needs its 49,408-token table; a narrow text
    # width keeps that table small.
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 3},
}


def new_clip(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return open_clip.model.CLIP(**CLIP_CONFIG)


def clip_tokenizer():
    return open_clip.get_tokenizer("ViT-B-32", context_length=CLIP_CONFIG["text_cfg"]["context_length"])


def captioned_scenes(n: int, rng: np.random.Generator, exclude: frozenset[str] = frozenset()):
    """n (scene, spec) pairs, families uniform, skipping captions in `exclude` (held-out eval prompts)."""
    out: list[tuple[Scene, PromptSpec]] = []
    while len(out) < n:
        spec = sample_spec(FAMILIES[int(rng.integers(len(FAMILIES)))], rng)
        if spec.text() not in exclude:
            out.append((scene_for(spec, rng), spec))
    return out


def hard_negative(spec: PromptSpec, scene: Scene, rng: np.random.Generator) -> PromptSpec:
    """A caption the scene does not satisfy that differs from `spec` in one attribute."""
    present = {it.digit for it in scene.cells if it is not None}
    absent = [d for d in range(10) if d not in present]
    other_colour = lambda c: int(rng.choice([k for k in range(len(COLOUR_NAMES)) if k != c]))  # noqa: E731
    match spec.family:
        case "single_object":
            return PromptSpec(spec.family, (int(rng.choice(absent)),), spec.colours)
        case "two_object":
            return PromptSpec(spec.family, (spec.digits[0], int(rng.choice(absent))), spec.colours)
        case "counting":
            wrong = {2: 3, 4: 3}.get(spec.count, int(rng.choice([2, 4])))
            return PromptSpec(spec.family, spec.digits, spec.colours, count=wrong)
        case "colors":
            return PromptSpec(spec.family, spec.digits, (other_colour(spec.colours[0]),))
        case "position":
            flipped = RELATIONS[RELATIONS.index(spec.relation) ^ 1]  # left <-> right, above <-> below
            return PromptSpec(spec.family, spec.digits, spec.colours, relation=flipped)
        case "color_attr":
            c1, c2 = spec.colours
            # Binding: the same words with the colours swapped; when both colours agree, change one.
            return PromptSpec(spec.family, spec.digits, (c2, c1) if c1 != c2 else (c1, other_colour(c2)))
    raise ValueError(spec.family)


def _matches(pairs) -> torch.Tensor:
    """(B, B) 1 where scene i satisfies caption j: with ~10 single-object captions a batch repeats
    captions and its scenes satisfy each other's captions, so one-hot targets would be wrong."""
    present = [{it.digit for it in s.cells if it is not None} for s, _ in pairs]
    return torch.tensor([
        [float(present[i].issuperset(p.digits) and satisfies(p, s.cells)) for _, p in pairs]  # cheap test first
        for i, (s, _) in enumerate(pairs)
    ])


def _contrastive(model, img: torch.Tensor, txt: torch.Tensor, matches: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on unit embeddings (B, D), every matching pair a positive (targets spread
    evenly over them)."""
    logits = model.logit_scale.exp() * img @ txt.T
    image_to_text = matches / matches.sum(1, keepdim=True)
    text_to_image = matches.T / matches.T.sum(1, keepdim=True)
    return (F.cross_entropy(logits, image_to_text) + F.cross_entropy(logits.T, text_to_image)) / 2


def _normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def train_clip(bank: DigitBank, *, seed: int, steps: int, batch: int = 64, exclude=frozenset(), progress=None):
    """Symmetric InfoNCE on (rendered scene, its caption) pairs from the training digits."""
    rng = np.random.default_rng(seed)
    model, tokenizer = new_clip(seed), clip_tokenizer()
    opt, sched = one_cycle(model.parameters(), lr=1e-3, steps=steps, weight_decay=0.05)
    model.train()
    for _ in range(steps):
        pairs = captioned_scenes(batch, rng, exclude)
        images = _normalise(render_batch([s for s, _ in pairs], bank, "train", rng))
        img = model.encode_image(images, normalize=True)
        txt = model.encode_text(tokenizer([p.text() for _, p in pairs]), normalize=True)
        loss = _contrastive(model, img, txt, _matches(pairs))
        take_step(loss, opt, sched, progress)
    return model.eval()


def train_preference(clip: nn.Module, bank: DigitBank, *, seed: int, steps: int, batch: int = 64, exclude=frozenset(), progress=None):
    """Finetune a copy of `clip`: rank the true caption above a hard negative (a Bradley-Terry loss on
    the cosines, as HPSv2 trains on preference pairs), plus the contrastive loss to stay a CLIP."""
    rng = np.random.default_rng(seed + 1)
    model, tokenizer = copy.deepcopy(clip).train().requires_grad_(True), clip_tokenizer()
    opt, sched = one_cycle(model.parameters(), lr=5e-4, steps=steps, weight_decay=0.05)
    for _ in range(steps):
        pairs = captioned_scenes(batch, rng, exclude)
        images = _normalise(render_batch([s for s, _ in pairs], bank, "train", rng))
        negatives = [hard_negative(p, s, rng).text() for s, p in pairs]
        img = model.encode_image(images, normalize=True)
        pos = model.encode_text(tokenizer([p.text() for _, p in pairs]), normalize=True)
        neg = model.encode_text(tokenizer(negatives), normalize=True)
        margin = model.logit_scale.exp() * ((img * pos).sum(-1) - (img * neg).sum(-1))
        loss = F.softplus(-margin).mean() + _contrastive(model, img, pos, _matches(pairs))
        take_step(loss, opt, sched, progress)
    return model.eval()


@torch.no_grad()
def zero_shot_acc(reward: RewardModel, bank: DigitBank, split: str, n: int, seed: int,
                  view: Callable[[torch.Tensor], torch.Tensor] = lambda images: images) -> float:
    """Single-object scenes of `split`, classified among the ten single-object captions by reward score.

    `view` maps the rendered images before scoring (e.g. a VAE round trip); the same seed gives the same scenes.
    """
    rng = np.random.default_rng(seed)
    specs = [sample_spec("single_object", rng) for _ in range(n)]
    images = view(render_batch([scene_for(s, rng) for s in specs], bank, split, rng))
    captions = [PromptSpec("single_object", (d,)).text() for d in range(len(DIGIT_NAMES))]
    scores = torch.stack([reward(images, [c] * n) for c in captions], dim=1)  # (n, 10)
    return (scores.argmax(1) == torch.tensor([s.digits[0] for s in specs])).float().mean().item()


@torch.no_grad()
def pairwise_acc(reward: RewardModel, bank: DigitBank, split: str, n: int, seed: int) -> float:
    """How often the reward ranks a scene's true caption above a hard negative (all families)."""
    rng = np.random.default_rng(seed)
    pairs = captioned_scenes(n, rng)
    images = render_batch([s for s, _ in pairs], bank, split, rng)
    true = reward(images, [p.text() for _, p in pairs])
    false = reward(images, [hard_negative(p, s, rng).text() for s, p in pairs])
    return (true > false).float().mean().item()
