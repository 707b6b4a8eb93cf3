"""Flow-GRPO's rollout: SDE steps only inside the window, and the log-probability of what each drew."""

import pytest
import torch

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig, sample, sde_log_prob, sde_mean_std
from diffusion.trainable import FinetuneConfig
from rollout.sde_window import SDEWindow
from rollout.worker import RolloutConfig, RolloutWorker
from value.reward_config import RewardConfig
from value.weighted_reward import RewardTermConfig

MODEL = ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)
REWARDS = {"clip": RewardTermConfig(model=RewardConfig(kind="random_tiny_clip"))}


def _worker():
    return RolloutWorker(MODEL, REWARDS, FinetuneConfig(), RolloutConfig(num_workers=1, batch_size=3, sampler=SamplerConfig(num_steps=6)),
                         height=16, width=16)


def test_the_window_is_the_only_stochastic_part_and_its_log_probs_are_of_what_it_drew():
    worker = _worker()
    prompts, groups, seeds = ["a red seven"] * 2 + ["a one"] * 2, [0, 0, 1, 1], [5, 6, 7, 8]
    ode = worker.sample(prompts, groups, seeds)
    batch = worker.sample(prompts, groups, seeds, window=SDEWindow(start=1, stop=3, sde_noise=0.7))
    window = batch.steps["latents"]
    assert window.shape == (4, 3, 4, 8, 8) and batch.steps["log_probs"].shape == (4, 2)
    assert batch.steps["start"].tolist() == [1, 1, 1, 1]
    # Before the window the rollout is the ODE's; the window's noise moves the final samples.
    C, h, w = worker.latent_shape
    times = worker.model.schedule(6, h, w)
    cond = worker.model.encode_prompt(prompts)
    with torch.no_grad():
        prefix = sample(worker.model, cond, times=times, seeds=seeds, latent_shape=(C, h, w), config=SamplerConfig(num_steps=6), stop=1)
        torch.testing.assert_close(window[:, 0], prefix.final)
        assert not torch.allclose(batch.latents, ode.latents)
        # Each recorded log-probability is that of the recorded next latent under the step's Gaussian.
        for j, k in enumerate((1, 2)):
            t = torch.full((4,), times[k].item())
            mean, std, _ = sde_mean_std(window[:, j], worker.model.velocity(window[:, j], t, cond), times[k].item(),
                                        times[k + 1].item(), 0.7)
            torch.testing.assert_close(batch.steps["log_probs"][:, j], sde_log_prob(window[:, j + 1], mean, std))
    # Same seeds, same window: the same draws.
    again = worker.sample(prompts, groups, seeds, window=SDEWindow(start=1, stop=3, sde_noise=0.7))
    assert torch.equal(again.steps["latents"], window)


def test_sde_log_prob_is_the_gaussian_density_averaged_over_elements():
    g = torch.Generator().manual_seed(0)
    mean, x = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    expected = torch.distributions.Normal(mean, 0.3).log_prob(x).flatten(1).mean(1)
    torch.testing.assert_close(sde_log_prob(x, mean, 0.3), expected)


def test_a_window_that_is_empty_or_runs_past_the_stop_is_refused():
    with pytest.raises(ValueError, match="empty"):
        SDEWindow(start=2, stop=2, sde_noise=0.7)
    with pytest.raises(ValueError, match="stops at step 1, inside the SDE window of steps 1..2"):
        worker = RolloutWorker(MODEL, REWARDS, FinetuneConfig(), RolloutConfig(num_workers=1, sampler=SamplerConfig(num_steps=6)),
                               height=16, width=16)
        worker._latents(["a one"], [1], SamplerConfig(num_steps=6), [1], SDEWindow(start=1, stop=3, sde_noise=0.7))
