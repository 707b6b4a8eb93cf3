import pytest
import torch

from diffusion.sampling import SamplerConfig
from rollout.generation import ScoredSamples, expand_prompts, generate_and_score
from value.reward_config import RewardConfig, build_reward_model


def test_expand_prompts_gives_groups_with_distinct_seeds():
    prompts, seeds = expand_prompts(["a", "b"], 3, seed=10)
    assert prompts == ["a", "a", "a", "b", "b", "b"]
    assert seeds == [10, 11, 12, 13, 14, 15]


def test_generation_is_seeded_and_independent_of_batch_size(sd3_model):
    reward = build_reward_model(RewardConfig(kind="random_tiny_clip"))
    prompts, seeds = expand_prompts(["a red seven", "a blue two"], 2, seed=0)
    kw = dict(sampler=SamplerConfig(num_steps=3, cfg_scale=2.0), height=16, width=16)
    a = generate_and_score(sd3_model, reward, prompts, seeds, batch_size=4, **kw)
    b = generate_and_score(sd3_model, reward, prompts, seeds, batch_size=3, **kw)
    assert a.images.shape == (4, 3, 16, 16) and a.latents.shape == (4, 4, 8, 8) and a.rewards.shape == (4,)
    assert torch.allclose(a.rewards, b.rewards, atol=1e-5)
    assert torch.allclose(a.images, b.images, atol=1e-5)
    assert not torch.allclose(a.images[0], a.images[1])  # two seeds of one prompt differ


def test_non_finite_rewards_are_an_error():
    with pytest.raises(RuntimeError, match="NaN"):
        ScoredSamples(["a"], [0], torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 1, 1), torch.tensor([float("nan")]), 0.0, 0.0)
