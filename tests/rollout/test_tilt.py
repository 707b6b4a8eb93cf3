"""The tilted sampler against closed form: a 1-d Gaussian-mixture base whose velocity and h_t are known
exactly, a linear reward; sampling with u - (t / (1 - t)) grad log h_t must draw the tilted distribution
p(x0) exp(a x0 / beta), whose components keep their variances, shift their means by a sigma^2 / beta and
are reweighted by exp(a mu / beta + a^2 sigma^2 / (2 beta^2)). Seeded, float64."""

import pytest
import torch

from diffusion.sampling import SamplerConfig, seeded_generators
from rollout.tilt import TiltConfig, tilt_sample, tilted_velocity, value_log_h
from tests.gaussian_mixture import GaussianMixture1d
from tests.rollout.test_guidance import LinearValue

BASE = GaussianMixture1d.example()
A, BETA = 1.0, 1.0


def exact_log_h(z, t, prompts):
    """log E[exp(A x0 / BETA) | z_t = z] (B,)."""
    return BASE.log_h(z, t, A / BETA)


def _tilted_moments() -> tuple[float, float]:
    return BASE.tilted(A / BETA).moments()


def _draw(n: int, steps: int, tilt: TiltConfig):
    times = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    generators = seeded_generators(range(n))
    z = torch.stack([torch.randn(1, 1, 1, generator=g, dtype=torch.float64) for g in generators])
    return tilt_sample(BASE, exact_log_h, z, None, [""] * n, times=times, generators=generators,
                       sampler=SamplerConfig(num_steps=steps), tilt=tilt).flatten()


def test_the_exact_tilt_draws_the_tilted_mixture():
    x = _draw(20_000, 400, TiltConfig(beta=BETA, gamma=1.0))
    mean, var = _tilted_moments()
    assert abs(x.mean().item() - mean) < 0.02, (x.mean().item(), mean)
    assert abs(x.var().item() / var - 1) < 0.04, (x.var().item(), var)
    base_mean = BASE.moments()[0]
    assert mean - base_mean > 0.8  # the check would notice a missing or halved tilt


def test_without_the_tilt_it_draws_the_base_and_gamma_zero_is_plain_sampling():
    x = _draw(20_000, 400, TiltConfig(beta=BETA, gamma=0.0))
    assert abs(x.mean().item() - BASE.moments()[0]) < 0.02
    times = torch.linspace(1, 0, 9, dtype=torch.float64)
    generators = seeded_generators([0, 1])
    z = torch.stack([torch.randn(1, 1, 1, generator=g, dtype=torch.float64) for g in generators])
    untilted = tilt_sample(BASE, exact_log_h, z.clone(), None, ["", ""], times=times,
                           generators=seeded_generators([0, 1]), sampler=SamplerConfig(num_steps=8),
                           tilt=TiltConfig(gamma=0.0))
    u = z.clone()
    for k in range(8):  # the plain Euler ODE by hand
        t, t_next = times[k].item(), times[k + 1].item()
        u = u - (t - t_next) * BASE.velocity(u, torch.full((2,), t, dtype=torch.float64), None)
    assert torch.equal(untilted, u)


def test_the_guidance_term_is_floored_at_t_1_and_clipped():
    u, g = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert torch.allclose(tilted_velocity(u, g, 0.5, 0.1, TiltConfig(gamma=2.0)), -2.0 * g)
    assert torch.allclose(tilted_velocity(u, g, 1.0, 0.1, TiltConfig(gamma=1.0)), -10.0 * g)  # 1 / dt at t = 1
    clipped = tilted_velocity(u, g, 0.5, 0.1, TiltConfig(gamma=2.0, max_norm=0.5))
    assert torch.allclose(clipped, -0.5 * g)
    with pytest.raises(ValueError, match="tilt.beta"):
        TiltConfig(beta=0.0)


def test_a_tilted_step_on_the_generator_moves_by_dt_gamma_t_over_1_minus_t_grad_over_beta(sd3_model):
    times = sd3_model.schedule(4, 8, 8)
    a = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(3))
    cond = sd3_model.encode_prompt(["a red seven"] * 2)
    sampler = SamplerConfig(num_steps=4, sde_noise=0.7)

    def run(tilt):
        gens = seeded_generators([3, 4])
        z = torch.stack([torch.randn(4, 8, 8, generator=g) for g in gens])  # the SDE's noise continues from there
        return tilt_sample(sd3_model, value_log_h(LinearValue(a), tilt.beta), z, cond, ["a"] * 2, times=times,
                           generators=gens, sampler=sampler, tilt=tilt)

    plain = run(TiltConfig(gamma=0.0))
    tilted = run(TiltConfig(beta=0.5, gamma=2.0, steps="3"))  # only the last step, t -> 0
    t, t_next = times[3].item(), times[4].item()
    expected = (t - t_next) * 2.0 * t / (1 - t) * a / 0.5
    torch.testing.assert_close(tilted - plain, expected.expand(2, -1, -1, -1), rtol=1e-4, atol=1e-5)
