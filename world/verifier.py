"""The verifier: reads each cell of an image (empty, or a digit and its colour) with a small CNN trained
on clean rendered cells, then applies the prompt's rules. Never a training reward: it is the
GenEval-like score that catches reward hacking."""

from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from world.optim import one_cycle, take_step
from world.prompts import FAMILIES, parse_prompt, satisfies
from world.scenes import CELL, COLOUR_NAMES, DigitBank, Item, Scene, render_batch

EMPTY = 10  # the digit head's class for an empty cell


class CellClassifier(nn.Module):
    """cells (B, 3, 16, 16) in [0, 1] -> (digit logits (B, 11), colour logits (B, 8))."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.ReLU(),
        )
        self.digit = nn.Linear(128, 11)
        self.colour = nn.Linear(128, len(COLOUR_NAMES))

    def forward(self, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(cells)
        return self.digit(h), self.colour(h)


def split_cells(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 32, 32) -> (B * 4, 3, 16, 16), cells in row-major order per image."""
    B = images.shape[0]
    cells = images.unfold(2, CELL, CELL).unfold(3, CELL, CELL)  # (B, 3, 2, 2, 16, 16)
    return cells.permute(0, 2, 3, 1, 4, 5).reshape(B * 4, 3, CELL, CELL)


class Verifier:
    def __init__(self, classifier: CellClassifier):
        self.classifier = classifier.eval()

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> list[tuple[Item | None, ...]]:
        """What each image shows: 4 cells per image, row-major."""
        digit_logits, colour_logits = self.classifier(split_cells(images.float().cpu()))
        digits, colours = digit_logits.argmax(-1).view(-1, 4), colour_logits.argmax(-1).view(-1, 4)
        return [
            tuple(None if d == EMPTY else Item(int(d), int(c)) for d, c in zip(ds, cs, strict=True))
            for ds, cs in zip(digits.tolist(), colours.tolist(), strict=True)
        ]

    def correct(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """(B,) bool: does image i satisfy prompt i?"""
        reads = self.read(images)
        return torch.tensor([satisfies(parse_prompt(p), r) for p, r in zip(prompts, reads, strict=True)])

    def report(self, images: torch.Tensor, prompts: list[str]) -> dict[str, float]:
        """The GenEval-like score: `prompt_acc` overall (the mean of the families present, as GenEval
        averages its tasks) and `prompt_acc/<family>`."""
        ok = self.correct(images, prompts)
        by_family: dict[str, list[bool]] = defaultdict(list)
        for p, o in zip(prompts, ok.tolist(), strict=True):
            by_family[parse_prompt(p).family].append(o)
        out = {f"prompt_acc/{f}": float(np.mean(by_family[f])) for f in FAMILIES if f in by_family}
        out["prompt_acc"] = float(np.mean(list(out.values())))
        return out


def random_scenes(n: int, rng: np.random.Generator, empty_prob: float = 0.3) -> list[Scene]:
    """Scenes with independent cells: each empty with `empty_prob`, else a random digit and colour."""
    cells = [
        None if rng.random() < empty_prob else Item(int(rng.integers(10)), int(rng.integers(len(COLOUR_NAMES))))
        for _ in range(4 * n)
    ]
    return [Scene(tuple(cells[4 * i : 4 * i + 4])) for i in range(n)]


def cell_targets(scenes: list[Scene]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B * 4,) digit targets (EMPTY for empty cells) and colour targets (-100, ignored, when empty)."""
    items = [it for s in scenes for it in s.cells]
    digits = torch.tensor([EMPTY if it is None else it.digit for it in items])
    colours = torch.tensor([-100 if it is None else it.colour for it in items])
    return digits, colours


def _degrade(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur and noise of random strength, so cells from a generator's decoder read like clean ones."""
    B = images.shape[0]
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    mix = torch.rand(B, 1, 1, 1, generator=gen) * 0.7
    noise = torch.randn(images.shape, generator=gen) * torch.rand(B, 1, 1, 1, generator=gen) * 0.08
    return (images * (1 - mix) + blurred * mix + noise).clamp(0, 1)


def train_verifier(bank: DigitBank, *, seed: int, steps: int, batch: int = 64, progress=None) -> CellClassifier:
    """Adam on fresh random scenes every step, from the train and val digits: like GenEval's detector,
    trained on more (and other) data than the generators it judges; test digits stay unseen."""
    torch.manual_seed(seed)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    model = CellClassifier()
    opt, sched = one_cycle(model.parameters(), lr=2e-3, steps=steps, warmup=0.3)
    for _ in range(steps):
        scenes = random_scenes(batch, rng)
        images = _degrade(render_batch(scenes, bank, "train+val", rng), gen)
        digits, colours = cell_targets(scenes)
        d_logits, c_logits = model(split_cells(images))
        loss = F.cross_entropy(d_logits, digits) + F.cross_entropy(c_logits, colours, ignore_index=-100)
        take_step(loss, opt, sched, progress)
    return model.eval()


@torch.no_grad()
def cell_accuracy(verifier: Verifier, bank: DigitBank, split: str, n: int, seed: int) -> float:
    """Fraction of cells read exactly right (empty, or digit and colour) on clean scenes of `split`."""
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n, rng)
    reads = verifier.read(render_batch(scenes, bank, split, rng))
    truth = [it for s in scenes for it in s.cells]
    got = [it for r in reads for it in r]
    return float(np.mean([a == b for a, b in zip(truth, got, strict=True)]))


def save_classifier(classifier: CellClassifier, folder) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, f"{folder}/verifier.safetensors")


def load_verifier(folder, *, setting: str = "eval.verifier") -> Verifier:
    """The verifier saved by `save_classifier` (read through safetensors, never unpickled). setting: the
    config key that named `folder`, for the errors."""
    from pathlib import Path

    from diffusion.weights_file import load_into, load_weights_file

    path = Path(folder) / "verifier.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{setting}: no verifier at {str(path)!r}; build the tiny world first: python launch/world.py")
    classifier = CellClassifier()
    load_into(classifier, load_weights_file(path, what=setting), what=setting, path=path,
              fix="rebuild the tiny world: python launch/world.py")
    return Verifier(classifier)
