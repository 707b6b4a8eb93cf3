import math

import pytest
import torch

from value.preference_likelihood import preference_loss, preference_probability


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_the_thurstone_probability_is_the_hand_computed_one():
    # gap 1 at t = 0.5: per-item variance 2 * 0.25 + 0.05 = 0.55, so P = Phi(1 / sqrt(1.1))
    p = preference_probability(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.5]))
    assert p.item() == pytest.approx(phi(1 / math.sqrt(1.1)), abs=1e-5)
    loss = preference_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.5]))
    assert loss.item() == pytest.approx(1 - math.sqrt(phi(1 / math.sqrt(1.1))), abs=1e-5)
    constant = preference_probability(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.9]), "thurstone_constant")
    assert constant.item() == pytest.approx(phi(1.0), abs=1e-5)  # v = 0.5 per item whatever t


def test_the_probability_rises_with_the_score_gap_and_softens_with_noise():
    gaps = torch.linspace(-3, 3, 13, dtype=torch.float64)  # float32 saturates at t = 0 beyond a gap of 2
    for t in (0.0, 0.5, 1.0):
        p = preference_probability(gaps, torch.zeros_like(gaps), torch.full_like(gaps, t))
        assert (p.diff() > 0).all()
        assert p[6].item() == pytest.approx(0.5)
    ts = torch.linspace(0, 1, 11)
    p = preference_probability(torch.ones(11), torch.zeros(11), ts)
    assert (p.diff() < 0).all()  # the same gap is less decisive at a higher noise level
    assert p[0] > 0.99 and p[-1] < 0.7


def test_the_bradley_terry_ablations():
    s_w, s_l, t = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.0]), torch.tensor([0.1, 0.9])
    assert preference_loss(s_w, s_l, t, "bt").item() == pytest.approx(-torch.log(torch.sigmoid(s_w - s_l)).mean().item(), abs=1e-6)
    assert preference_loss(s_w, s_l, t, "bt_margin").item() == pytest.approx(
        -torch.log(torch.sigmoid(s_w - s_l - 1)).mean().item(), abs=1e-6)


def test_an_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match="likelihood='plackett'"):
        preference_loss(torch.ones(1), torch.zeros(1), torch.zeros(1), "plackett")
