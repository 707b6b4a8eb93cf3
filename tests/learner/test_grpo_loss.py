"""Flow-GRPO's loss against a hand computation."""

import math

import pytest
import torch

from learner.grpo_loss import GRPOConfig, grpo_loss


def test_the_loss_is_the_clipped_surrogate_plus_the_kl_on_the_means_by_hand():
    cfg = GRPOConfig(clip_range=0.1, kl_weight=0.5, adv_clip=2.0)
    # Ratios 1.05 (inside the clip), 1.5 and 0.5 (outside), advantages 1, 3 (clipped to 2), -1.
    log_prob = torch.tensor([math.log(1.05), math.log(1.5), math.log(0.5)])
    old, adv = torch.zeros(3), torch.tensor([1.0, 3.0, -1.0])
    mean, ref = torch.zeros(3, 1, 2, 1), torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1, 1).expand(3, 1, 2, 1)
    loss, parts = grpo_loss(log_prob, old, adv, cfg, mean, ref, nu=0.5)
    # max(-A rho, -A clip(rho)): row 0 -1.05; row 1 A=2: max(-3, -2.2) = -2.2; row 2 A=-1: max(0.5, 0.9) = 0.9.
    policy = torch.tensor([-1.05, -2.2, 0.9])
    kl = torch.tensor([0.0, 1.0, 4.0]) / (2 * 0.25)
    torch.testing.assert_close(parts["policy_loss"], policy)
    torch.testing.assert_close(parts["kl"], kl)
    torch.testing.assert_close(loss, policy + 0.5 * kl)
    assert parts["clipped"].tolist() == [0.0, 1.0, 1.0]


def test_on_policy_the_gradient_is_the_advantage_weighted_log_prob_gradient():
    """rho = 1 inside the clip: d loss / d log_prob = -A."""
    log_prob = torch.zeros(2, requires_grad=True)
    loss, _ = grpo_loss(log_prob, torch.zeros(2), torch.tensor([0.5, -2.0]), GRPOConfig())
    loss.sum().backward()
    torch.testing.assert_close(log_prob.grad, torch.tensor([-0.5, 2.0]))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("clip_range", 0.0, "grpo.clip_range=0.0 must be > 0"),
    ("sde_noise", 0.0, "grpo.sde_noise=0.0 must be > 0"),
    ("updates_per_batch", 0, "grpo.updates_per_batch=0 must be at least 1"),
    ("window_size", -1, "grpo.window_size=-1 must be >= 0"),
])
def test_bad_settings_are_refused_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**{field: value})
