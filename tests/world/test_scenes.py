import numpy as np
import torch

from world.scenes import DigitBank, Item, Scene, render


def test_splits_are_disjoint_and_cover_the_digits():
    bank = DigitBank(seed=0)
    sizes = [bank.size(s) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 and min(sizes) > 300
    ids = [set(map(tuple, bank._glyphs[s].reshape(bank.size(s), -1).round(4).tolist())) for s in ("train", "test")]
    # Handwriting in the test split is not in the training split (a few exact duplicates exist in the data).
    assert len(ids[0] & ids[1]) < 5
    assert bank.size("train+val") == sizes[0] + sizes[1]


def test_render_is_seeded_and_places_ink_in_its_cell():
    bank = DigitBank(seed=0)
    scene = Scene((None, None, None, Item(7, 0)))
    a = render(scene, bank, "train", np.random.default_rng(3))
    b = render(scene, bank, "train", np.random.default_rng(3))
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    assert a[:, :16, :].max() < 0.1 and a[:, 16:, 16:].max() > 0.5  # dark everywhere but the bottom-right cell
    assert a[0, 16:, 16:].max() > a[2, 16:, 16:].max()  # red ink
