"""FK steering: resampling statistics on a toy potential, the potentials, value-ranked proposals, and the
steering methods' cost and selection guarantees on a tiny seeded model (all seeded: same numbers every run)."""

import pytest
import torch

from diffusion.sampling import SamplerConfig, sampler_step
from rollout.particles import FKConfig, effective_sample_size, log_potential, propose, resample
from rollout.steering import SteerConfig, Steerer
from tests.tiny_models import tiny_clip_reward
from value.baselines import TweedieValue
from value.value_model import ValueModel


class MeanValue(ValueModel):
    """V(z) = mean of z per row: a toy potential with an obvious ranking."""

    def forward(self, z, t, prompts):
        return z.flatten(1).mean(1)


def test_multinomial_resampling_draws_ancestors_in_proportion_to_the_potentials():
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4])
    gens = [torch.Generator().manual_seed(b) for b in range(500)]
    ancestors = resample(weights.log().repeat(500, 1), gens, adaptive=False)  # 500 prompts x 4 particles
    freq = torch.bincount(ancestors.flatten(), minlength=4).float() / ancestors.numel()
    torch.testing.assert_close(freq, weights, atol=0.02, rtol=0)  # 2,000 draws: sd of a frequency < 0.011


def test_effective_sample_size_and_adaptive_resampling():
    uniform, peaked = torch.zeros(1, 4), torch.tensor([[0.0, -30.0, -30.0, -30.0]])
    torch.testing.assert_close(effective_sample_size(torch.cat([uniform, peaked])), torch.tensor([4.0, 1.0]))
    gens = [torch.Generator().manual_seed(0)]
    assert resample(uniform, gens, adaptive=True).tolist() == [[0, 1, 2, 3]]  # ESS = N: kept
    assert resample(peaked, gens, adaptive=True).tolist() == [[0, 0, 0, 0]]  # ESS = 1: all from particle 0


def test_potentials_diff_telescopes_max_and_sum_accumulate():
    v1, v2, v3 = torch.tensor([0.1, 0.5]), torch.tensor([0.4, 0.2]), torch.tensor([0.3, 0.9])
    cfg = lambda p: FKConfig(potential=p, temperature=2.0)  # noqa: E731
    total, history = torch.zeros(2), None
    for v in (v1, v2, v3):
        g, history = log_potential(v, history, cfg("diff"))
        total += g
    torch.testing.assert_close(total, 2.0 * v3)  # prod of exp(lambda (V_k - V_{k-1})) = exp(lambda V_last)
    history = None
    for v in (v1, v2, v3):
        g, history = log_potential(v, history, cfg("max"))
    torch.testing.assert_close(g, 2.0 * torch.tensor([0.4, 0.9]))
    history = None
    for v in (v1, v2, v3):
        g, history = log_potential(v, history, cfg("sum"))
    torch.testing.assert_close(g, 2.0 * (v1 + v2 + v3))


def test_value_ranked_proposals_keep_the_highest_value_draw_and_draw_zero_is_the_plain_step():
    z, u = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    sampler = SamplerConfig(num_steps=10, sde_noise=0.7)
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    best, scores = propose(z, u, 0.8, 0.7, MeanValue(), ["p"] * 3, gens, sampler, proposals=5)
    assert scores.shape == (5, 3)
    torch.testing.assert_close(MeanValue()(best, None, None), scores.max(0).values)
    plain = sampler_step(z, u, 0.8, 0.7, [torch.Generator().manual_seed(s) for s in range(3)], sampler)
    torch.testing.assert_close(MeanValue()(plain, None, None), scores[0])


def _steerer(model, method: str, value=None, **fk):
    cfg = SteerConfig(method=method, sampler=SamplerConfig(num_steps=4, sde_noise=0.7), fk=FKConfig(**fk))
    return Steerer(model, tiny_clip_reward().requires_grad_(False), value, cfg, height=16, width=16)


def test_best_of_n_never_scores_below_the_plain_sample_its_particle_zero_reproduces(sd3_model):
    sd3_model.requires_grad_(False)
    prompts, seeds = ["a red seven", "two blue threes", "a green one"] * 2, [10, 11, 12, 13, 14, 15]
    plain = _steerer(sd3_model, "plain").sample(prompts, seeds)
    best = _steerer(sd3_model, "best_of_n", particles=4).sample(prompts, seeds)
    assert (best.rewards >= plain.rewards - 1e-6).all()
    assert (best.rewards > plain.rewards + 1e-6).any()  # with 4 seeded particles some prompt improves
    again = _steerer(sd3_model, "best_of_n", particles=4).sample(prompts, seeds)
    torch.testing.assert_close(again.latents, best.latents)  # seeded: same particles, same choice


def test_fk_with_tweedie_potentials_costs_no_extra_denoiser_pass(sd3_model):
    sd3_model.requires_grad_(False)
    reward = tiny_clip_reward().requires_grad_(False)
    calls = []
    velocity = sd3_model.velocity
    sd3_model.velocity = lambda z, t, cond: calls.append(z.shape[0]) or velocity(z, t, cond)
    steerer = _steerer(sd3_model, "fk", TweedieValue(sd3_model, reward), particles=3, resample_steps="1-3", resample_every=1)
    out = steerer.sample(["a red seven", "two blue threes"], [0, 1])
    assert calls == [6] * 4  # one pass per step over 2 prompts x 3 particles, resampling at steps 1, 2, 3
    assert out.value_calls == 3 * 6 and out.latents.shape == (2, 4, 8, 8)


def test_fk_with_proposals_scores_every_candidate_with_the_value(sd3_model):
    sd3_model.requires_grad_(False)
    out = _steerer(sd3_model, "fk", MeanValue(), particles=2, proposals=3, proposal_steps="0-1",
                   resample_steps="2", resample_every=1).sample(["a red seven"], [0])
    assert out.value_calls == 2 * 3 * 2 + 2  # 2 proposal steps x 2 particles x 3 draws, one resampling


def test_steering_configs_refuse_what_cannot_work(sd3_model):
    with pytest.raises(ValueError, match="stochastic sampler"):
        SteerConfig(method="fk", sampler=SamplerConfig(sde_noise=0.0))
    with pytest.raises(ValueError, match="steer.method"):
        SteerConfig(method="svdd")
    with pytest.raises(ValueError, match="fk.potential"):
        FKConfig(potential="exp")
    with pytest.raises(ValueError, match="needs a value model"):
        _steerer(sd3_model, "dps")
    with pytest.raises(ValueError, match="cfg_scale"):
        Steerer(sd3_model, tiny_clip_reward(), TweedieValue(sd3_model, tiny_clip_reward(), cfg_scale=2.0),
                SteerConfig(method="dps"), height=16, width=16)
    assert FKConfig(resample_steps="8-32", resample_every=4).resampling(40) == {8, 12, 16, 20, 24, 28, 32}
