"""Tweedie and Monte Carlo values on the tiny models, seeded."""

import pytest
import torch

from diffusion.sampling import SamplerConfig, rollout_from
from tests.tiny_models import tiny_clip_reward
from value.baselines import MonteCarloValue, TweedieValue

PROMPTS = ["a red seven", "two blue threes"]


def test_tweedie_at_t_zero_scores_the_decoded_latent(sd3_model, latents):
    reward = tiny_clip_reward()
    z, _ = latents
    with torch.no_grad():
        got = TweedieValue(sd3_model, reward)(z, torch.zeros(2), PROMPTS)
        assert torch.allclose(got, reward(sd3_model.decode(z), PROMPTS), atol=1e-6)


def test_tweedie_is_differentiable_through_the_denoiser(sd3_model, latents):
    z, t = latents
    z = z.clone().requires_grad_(True)
    TweedieValue(sd3_model, tiny_clip_reward(), cfg_scale=3.0)(z, t, PROMPTS).sum().backward()
    assert z.grad.abs().sum() > 0


def test_monte_carlo_with_the_ode_is_the_reward_of_the_one_rollout(sd3_model, latents):
    reward = tiny_clip_reward()
    times = sd3_model.schedule(6, 8, 8)
    z, _ = latents
    t = torch.stack([times[2], times[4]])
    ode = MonteCarloValue(sd3_model, reward, rollouts=3, num_steps=6, sde_noise=0.0)
    samples = ode.samples(z, t, PROMPTS)
    assert torch.allclose(samples, samples[0].expand(3, -1))
    cond = sd3_model.encode_prompt(PROMPTS[:1])
    with torch.no_grad():
        final = rollout_from(sd3_model, z[:1], cond, times=times, start=2, seeds=[0], config=SamplerConfig(num_steps=6)).final
        assert samples[0, 0] == pytest.approx(reward(sd3_model.decode(final), PROMPTS[:1]).item(), abs=1e-5)


def test_monte_carlo_with_the_posterior_sde_varies_and_is_seeded(sd3_model, latents):
    times = sd3_model.schedule(6, 8, 8)
    z, _ = latents
    t = torch.stack([times[1], times[1]])
    mc = MonteCarloValue(sd3_model, tiny_clip_reward(), rollouts=4, num_steps=6, seed=3)
    a, b = mc.samples(z, t, PROMPTS), mc.samples(z, t, PROMPTS)
    assert torch.equal(a, b) and a.std(0).min() > 0
    with pytest.raises(ValueError, match="not on the 6-step schedule"):
        mc(z, torch.tensor([0.123, 0.5]), PROMPTS)


def test_unprompted_values_denoise_under_the_null_prompt_and_score_with_each_samples_own(sd3_model, latents):
    reward = tiny_clip_reward()
    z, t = latents
    null = sd3_model.encode_prompt(["", ""])
    with torch.no_grad():
        by_hand = reward(sd3_model.decode(z - t.view(-1, 1, 1, 1) * sd3_model.velocity(z, t, null)), PROMPTS)
        for cfg_scale in (1.0, 3.0):  # CFG between the null prompt and itself is the null prompt's velocity
            unprompted = TweedieValue(sd3_model, reward, cfg_scale=cfg_scale, prompted=False)(z, t, PROMPTS)
            assert torch.allclose(unprompted, by_hand, atol=1e-5)
        assert not torch.allclose(TweedieValue(sd3_model, reward)(z, t, PROMPTS), by_hand, atol=1e-5)
        times = sd3_model.schedule(6, 8, 8)
        start = torch.stack([times[2], times[2]])
        ode = dict(rollouts=1, num_steps=6, sde_noise=0.0)
        final = rollout_from(sd3_model, z, null, times=times, start=2, seeds=[0, 1], config=SamplerConfig(num_steps=6)).final
        got = MonteCarloValue(sd3_model, reward, prompted=False, **ode)(z, start, PROMPTS)
        assert torch.allclose(got, reward(sd3_model.decode(final), PROMPTS), atol=1e-5)
