"""The rollout worker as a plain object (no Ray): seeded groups, scoring, and loading published weights."""

import pytest
import torch

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from diffusion.trainable import FinetuneConfig
from rollout.worker import RolloutConfig, RolloutWorker
from value.reward_config import RewardConfig
from value.weighted_reward import RewardTermConfig


def _worker(finetune=FinetuneConfig()):
    return RolloutWorker(
        ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8),
        {"clip": RewardTermConfig(weight=2.0, model=RewardConfig(kind="random_tiny_clip"))},
        finetune,
        RolloutConfig(num_workers=1, batch_size=3, sampler=SamplerConfig(num_steps=3)),
        height=16, width=16,
    )


def test_sample_is_seeded_weighted_and_tagged_with_the_policy_version():
    worker = _worker()
    prompts, groups, seeds = ["a red seven"] * 2 + ["two blue threes"] * 2, [0, 0, 1, 1], [5, 6, 7, 8]
    batch = worker.sample(prompts, groups, seeds)
    assert batch.latents.shape == (4, 4, 8, 8) and batch.cond.prompt_embeds.shape[0] == 4
    torch.testing.assert_close(batch.rewards, 2.0 * batch.reward_terms["clip"])
    assert batch.policy_version == 0 and batch.seconds["rollout"] > 0
    # Same seeds, same samples, whatever else is in the batch.
    again = worker.sample(prompts[2:], groups[2:], seeds[2:])
    torch.testing.assert_close(again.latents, batch.latents[2:])


def test_loaded_weights_change_the_samples_and_the_version():
    worker = _worker()
    before = worker.sample(["a red seven"], [0], [1])
    weights = {n: p.detach() + 0.05 * torch.randn_like(p) for n, p in worker.model.transformer.named_parameters()}
    assert worker.load_weights(weights, version=7) == 7
    after = worker.sample(["a red seven"], [0], [1])
    assert after.policy_version == 7
    assert not torch.allclose(after.latents, before.latents)


def test_evaluate_puts_the_policy_weights_back():
    worker = _worker()
    before = worker.sample(["a red seven"], [0], [1])
    ema = {n: torch.zeros_like(p) for n, p in worker.model.transformer.named_parameters()}
    worker.evaluate(ema, ["a red seven"], [1], SamplerConfig(num_steps=2))
    torch.testing.assert_close(worker.sample(["a red seven"], [0], [1]).latents, before.latents)


def test_weights_of_another_finetune_mode_are_refused():
    worker = _worker(FinetuneConfig(mode="lora"))
    full = {n: p.detach() for n, p in _worker().model.transformer.named_parameters()}
    with pytest.raises(ValueError, match="same model and finetune config"):
        worker.load_weights(full, version=1)
