"""The DiffusionNFT loss against hand-computed values, its on-policy gradient, the reward normalisation
and the old-policy schedule."""

import pytest
import torch

from learner.nft_loss import NFTLossConfig, ema_update, nft_loss, old_policy_decay, optimality_probability


def test_optimality_probability_by_hand():
    rewards = torch.tensor([1.0, 3.0, 10.0, 10.0])
    groups = torch.tensor([0, 0, 1, 1])
    adv, r = optimality_probability(rewards, groups, adv_clip=5.0)
    std = rewards.std(unbiased=False).item()  # over the batch, not per group
    expected = torch.tensor([-1.0, 1.0, 0.0, 0.0]) / (std + 1e-4)
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(r, 0.5 + expected / 10, atol=1e-6)


def test_advantages_are_clipped_and_nan_rewards_are_refused():
    rewards = torch.tensor([0.0] * 99 + [1000.0])
    adv, r = optimality_probability(rewards, torch.zeros(100, dtype=torch.long), adv_clip=5.0)
    assert adv.max() == 5.0 and r.max() == 1.0
    with pytest.raises(FloatingPointError, match="NaN"):
        optimality_probability(torch.tensor([1.0, float("nan")]), torch.tensor([0, 0]), 5.0)


def _case():
    g = torch.Generator().manual_seed(0)
    shape = (2, 1, 2, 2)
    return [torch.randn(shape, generator=g) for _ in range(4)] + [torch.tensor([0.3, 0.8]), torch.tensor([0.9, 0.2])]


def test_velocity_form_by_hand():
    v_theta, v_old, x0, eps, t, r = _case()
    loss = nft_loss(v_theta, v_old, eps - x0, t, r, NFTLossConfig(form="velocity", nft_beta=0.5, kl_weight=0.0))[0].mean()
    target = eps - x0
    total = 0.0
    for i in range(2):
        pos = ((0.5 * v_old[i] + 0.5 * v_theta[i] - target[i]) ** 2).mean()
        neg = ((1.5 * v_old[i] - 0.5 * v_theta[i] - target[i]) ** 2).mean()
        total += r[i] * pos + (1 - r[i]) * neg
    assert loss.item() == pytest.approx(total.item() / 2, rel=1e-6)


def test_x0_normalised_form_by_hand():
    v_theta, v_old, x0, eps, t, r = _case()
    cfg = NFTLossConfig(nft_beta=0.25, kl_weight=0.0)
    loss = nft_loss(v_theta, v_old, eps - x0, t, r, cfg)[0].mean()
    total = 0.0
    for i in range(2):
        x_t = (1 - t[i]) * x0[i] + t[i] * eps[i]
        parts = []
        for v in (0.75 * v_old[i] + 0.25 * v_theta[i], 1.25 * v_old[i] - 0.25 * v_theta[i]):
            err = x_t - t[i] * v - x0[i]
            parts.append((err**2).mean() / err.abs().mean())
        total += (r[i] * parts[0] + (1 - r[i]) * parts[1]) / 0.25
    assert loss.item() == pytest.approx(5.0 * total.item() / 2, rel=1e-5)


def test_on_policy_gradient_is_2r_minus_1_times_flow_matching():
    _, v_old, x0, eps, t, r = _case()
    v_theta = v_old.clone().requires_grad_(True)
    loss = nft_loss(v_theta, v_old, eps - x0, t, r, NFTLossConfig(form="velocity", nft_beta=0.1, kl_weight=0.0))[0].mean()
    loss.backward()
    fm = v_old.clone().requires_grad_(True)
    (((fm - (eps - x0)) ** 2).flatten(1).mean(1)).mean().backward()  # plain flow matching at theta_old
    expected = 0.1 * (2 * r - 1).view(-1, 1, 1, 1) * fm.grad
    assert torch.allclose(v_theta.grad, expected, atol=1e-7)


def test_kl_term_has_its_own_weight():
    v_theta, v_old, x0, eps, t, r = _case()
    v_ref = torch.zeros_like(v_theta)
    plain = nft_loss(v_theta, v_old, eps - x0, t, r, NFTLossConfig(kl_weight=0.0), v_ref=v_ref)[0].mean()
    with_kl, stats = nft_loss(v_theta, v_old, eps - x0, t, r, NFTLossConfig(kl_weight=0.5), v_ref=v_ref)
    with_kl = with_kl.mean()
    assert stats["kl"].mean().item() == pytest.approx((v_theta**2).flatten(1).mean(1).mean().item(), rel=1e-6)
    assert with_kl.item() == pytest.approx(plain.item() + 0.5 * stats["kl"].mean().item(), rel=1e-6)


def test_old_policy_schedule_and_ema():
    assert [old_policy_decay(s) for s in (0, 100, 500, 2000)] == [0.0, 0.1, 0.5, 0.5]
    old, new = [torch.zeros(3)], [torch.ones(3)]
    ema_update(old, new, decay=0.25)
    assert torch.allclose(old[0], torch.full((3,), 0.75))


def test_config_names_the_bad_value():
    with pytest.raises(ValueError, match="nft.form"):
        NFTLossConfig(form="x0")
    with pytest.raises(ValueError, match="nft.nft_beta"):
        NFTLossConfig(nft_beta=0.0)
