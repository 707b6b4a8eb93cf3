import pytest
import torch

from diffusion.bridge import bridge


def test_tau_zero_is_plain_flow_matching():
    g = torch.Generator().manual_seed(0)
    z0, eps, t = torch.randn(3, 2, 2, 2, generator=g), torch.randn(3, 2, 2, 2, generator=g), torch.tensor([0.2, 0.5, 0.9])
    z_t, v = bridge(z0, torch.zeros(3), t, eps)
    torch.testing.assert_close(z_t, (1 - t.view(-1, 1, 1, 1)) * z0 + t.view(-1, 1, 1, 1) * eps)
    torch.testing.assert_close(v, eps - z0)


def test_marginal_given_z0_is_the_forward_process():
    """z_tau drawn from the forward process, then bridged: z_t has mean (1 - t) z0 and std t."""
    g = torch.Generator().manual_seed(1)
    n, tau, t, z0 = 200_000, 0.4, 0.7, 1.5
    z_tau = (1 - tau) * z0 + tau * torch.randn(n, 1, 1, 1, generator=g, dtype=torch.float64)
    z_t, _ = bridge(z_tau, torch.full((n,), tau), torch.full((n,), t), torch.randn(n, 1, 1, 1, generator=g, dtype=torch.float64))
    assert z_t.mean().item() == pytest.approx((1 - t) * z0, abs=5e-3)
    assert z_t.std().item() == pytest.approx(t, abs=5e-3)


def test_target_is_the_time_derivative_of_the_bridge():
    g = torch.Generator().manual_seed(2)
    z_tau, eps = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64), torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)
    tau, t, h = torch.tensor([0.3, 0.55], dtype=torch.float64), torch.tensor([0.5, 0.8], dtype=torch.float64), 1e-6
    _, v = bridge(z_tau, tau, t, eps)
    ahead, _ = bridge(z_tau, tau, t + h, eps)
    behind, _ = bridge(z_tau, tau, t - h, eps)
    torch.testing.assert_close(v, (ahead - behind) / (2 * h), rtol=1e-5, atol=1e-6)


def test_times_at_or_below_the_stop_are_refused():
    x = torch.zeros(1, 1, 1, 1)
    with pytest.raises(ValueError, match="strictly above"):
        bridge(x, torch.tensor([0.5]), torch.tensor([0.5]), x)
