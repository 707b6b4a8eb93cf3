"""Samplers on toy problems with known velocity fields, and on the tiny SD3 model. Seeded throughout:
the same seeds give the same samples."""

import pytest
import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import POSTERIOR_SDE_NOISE, SamplerConfig, guided_velocity, rollout_from, sample
from diffusion.schedule import flow_schedule


class GaussianFlow:
    """Exact marginal velocity when z0 ~ N(m, s^2): the ODE maps noise eps to m + s * eps."""

    def __init__(self, m: float, s: float):
        self.m, self.s = m, s

    def velocity(self, z, t, cond):
        t = t.view(-1, *([1] * (z.dim() - 1)))
        var = (1 - t) ** 2 * self.s**2 + t**2  # Var z_t
        dvar = -2 * (1 - t) * self.s**2 + 2 * t
        mean = (1 - t) * self.m
        return -self.m + dvar / (2 * var) * (z - mean)


def _cond(batch: int) -> Conditioning:
    return Conditioning(torch.zeros(batch, 1, 1), torch.zeros(batch, 1))


def _run(model, seeds, num_steps, **kw):
    times = flow_schedule(num_steps, shift=kw.pop("shift", 1.0))
    config = SamplerConfig(num_steps=num_steps, sde_noise=kw.pop("sde_noise", 0.0))
    return sample(model, _cond(len(seeds)), times=times, seeds=seeds, latent_shape=(1, 1, 1), config=config, **kw)


def test_point_mass_is_transported_exactly_by_euler():
    # z0 = c always: u = (z - c) / t is constant along straight paths, so Euler is exact at any step count.
    model = GaussianFlow(m=2.5, s=0.0)
    out = _run(model, seeds=[0, 1, 2], num_steps=3)
    assert torch.allclose(out.final, torch.full_like(out.final, 2.5), atol=1e-5)


def test_gaussian_ode_map_matches_the_analytic_transport():
    model = GaussianFlow(m=1.0, s=0.5)
    out = _run(model, seeds=list(range(8)), num_steps=400)
    noise = out.latents[0]
    assert torch.allclose(out.final, 1.0 + 0.5 * noise, atol=5e-3)


def test_sde_has_the_data_marginal():
    model = GaussianFlow(m=1.0, s=0.5)
    out = _run(model, seeds=list(range(3000)), num_steps=100, sde_noise=0.7)
    final = out.final.flatten()
    assert final.mean().item() == pytest.approx(1.0, abs=0.04)
    assert final.std().item() == pytest.approx(0.5, abs=0.04)
    # ...and it is a different sampler: the same seeds do not give the ODE's samples.
    ode = _run(model, seeds=list(range(3000)), num_steps=100).final.flatten()
    assert (final - ode).abs().mean() > 0.05


@pytest.mark.parametrize("sde_noise", [0.0, 0.7])
def test_partial_trajectory_is_the_prefix_of_the_full_one(sd3_model, sde_noise):
    cond = sd3_model.encode_prompt(["a red seven", "two blue threes"])
    times = sd3_model.schedule(6, 8, 8)
    kw = dict(times=times, seeds=[3, 4], latent_shape=(4, 8, 8), config=SamplerConfig(num_steps=6, sde_noise=sde_noise))
    with torch.no_grad():
        full = sample(sd3_model, cond, **kw)
        partial = sample(sd3_model, cond, stop=4, **kw)
    assert partial.latents.shape == (5, 2, 4, 8, 8) and full.latents.shape == (7, 2, 4, 8, 8)
    assert torch.equal(partial.times, times[:5])
    assert torch.allclose(partial.latents, full.latents[:5], atol=1e-6)


def test_a_sample_does_not_depend_on_its_batch(sd3_model):
    cond = sd3_model.encode_prompt(["a red seven", "a red seven"])
    kw = dict(times=sd3_model.schedule(4, 8, 8), latent_shape=(4, 8, 8), config=SamplerConfig(num_steps=4, sde_noise=0.5))
    with torch.no_grad():
        pair = sample(sd3_model, cond, seeds=[11, 12], **kw).final
        alone = sample(sd3_model, cond.index([1]), seeds=[12], **kw).final
        again = sample(sd3_model, cond, seeds=[11, 12], **kw).final
    assert torch.allclose(pair[1], alone[0], atol=1e-5)
    assert torch.equal(pair, again)


def test_cfg_combines_the_two_branches(sd3_model, latents):
    z, t = latents
    cond, null = sd3_model.encode_prompt(["a red seven", "a blue two"]), sd3_model.encode_prompt(["", ""])
    with torch.no_grad():
        u_c, u_n = sd3_model.velocity(z, t, cond), sd3_model.velocity(z, t, null)
        guided = guided_velocity(sd3_model, z, t, cond, null, 4.0)
        plain = guided_velocity(sd3_model, z, t, cond, None, 1.0)
    assert torch.allclose(guided, u_n + 4.0 * (u_c - u_n), atol=1e-5)
    assert torch.equal(plain, u_c)
    with pytest.raises(ValueError, match="null_cond"):
        guided_velocity(sd3_model, z, t, cond, None, 3.0)


def test_rollout_from_a_partial_trajectory_finishes_it(sd3_model):
    cond = sd3_model.encode_prompt(["a red seven", "two blue threes"])
    times = sd3_model.schedule(6, 8, 8)
    kw = dict(times=times, config=SamplerConfig(num_steps=6))
    with torch.no_grad():
        full = sample(sd3_model, cond, seeds=[3, 4], latent_shape=(4, 8, 8), **kw)
        rest = rollout_from(sd3_model, full.latents[2], cond, start=2, seeds=[0, 0], **kw)
    assert torch.equal(rest.times, times[2:])
    assert torch.allclose(rest.final, full.final, atol=1e-5)


def test_posterior_sde_from_z_t_draws_the_gaussian_posterior():
    # z0 ~ N(m, s^2): z0 | z_t is Gaussian with the moments below; the ODE would give a single point.
    m, s, t, zt = 1.0, 0.5, 0.5, 0.8
    model, n, steps = GaussianFlow(m, s), 3000, 200
    times = flow_schedule(2 * steps, shift=1.0)[steps:]  # from t = 0.5 down to 0
    z = torch.full((n, 1, 1, 1), zt)
    config = SamplerConfig(num_steps=steps, sde_noise=POSTERIOR_SDE_NOISE)
    out = rollout_from(model, z, _cond(n), times=times, start=0, seeds=list(range(n)), config=config).final.flatten()
    var_t = (1 - t) ** 2 * s**2 + t**2
    mean = m + (1 - t) * s**2 / var_t * (zt - (1 - t) * m)
    std = (s**2 - ((1 - t) * s**2) ** 2 / var_t) ** 0.5
    assert out.mean().item() == pytest.approx(mean, abs=0.02)
    assert out.std().item() == pytest.approx(std, abs=0.02)


def test_stop_outside_the_schedule_is_an_error():
    with pytest.raises(ValueError, match="stop=9"):
        _run(GaussianFlow(0.0, 1.0), seeds=[0], num_steps=4, stop=9)


def test_sampler_config_validates():
    with pytest.raises(ValueError, match="sampler.num_steps"):
        SamplerConfig(num_steps=0)
    with pytest.raises(ValueError, match="sampler.sde_noise"):
        SamplerConfig(sde_noise=-1.0)
