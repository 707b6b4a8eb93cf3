"""The rollout worker as a plain object (no Ray): seeded groups, scoring, and loading published weights."""

import pytest
import torch

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from diffusion.trainable import FinetuneConfig
from rollout.worker import RolloutConfig, RolloutWorker
from value.reward_config import RewardConfig
from value.value_config import ValueConfig
from value.weighted_reward import RewardTermConfig


MODEL = ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)  # seeded: every build has the same weights
REWARD = RewardConfig(kind="random_tiny_clip")


def _tiny_worker(rollout: RolloutConfig, *, finetune=FinetuneConfig(), weight: float = 1.0):
    return RolloutWorker(MODEL, {"clip": RewardTermConfig(weight=weight, model=REWARD)}, finetune, rollout, height=16, width=16)


def _worker(finetune=FinetuneConfig()):
    return _tiny_worker(RolloutConfig(num_workers=1, batch_size=3, sampler=SamplerConfig(num_steps=3)), finetune=finetune, weight=2.0)


def test_sample_is_seeded_weighted_and_tagged_with_the_policy_version():
    worker = _worker()
    prompts, groups, seeds = ["a red seven"] * 2 + ["two blue threes"] * 2, [0, 0, 1, 1], [5, 6, 7, 8]
    batch = worker.sample(prompts, groups, seeds)
    assert batch.latents.shape == (4, 4, 8, 8) and batch.cond.prompt_embeds.shape[0] == 2  # one per prompt
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


@pytest.fixture
def value_export(tmp_path):
    """A stitched value (at its stage-1 fit) for exactly the worker's base model and reward."""
    from diffusion.model_config import build_flow_model
    from tests.tiny_models import stitched_from_fit
    from value.reward_config import build_reward_model
    from value.stitched import save_stitched

    backbone = build_flow_model(MODEL)
    reward = build_reward_model(REWARD)
    g = torch.Generator().manual_seed(0)
    value = stitched_from_fit(backbone, reward, [torch.rand(6, 3, 16, 16, generator=g) for _ in range(2)], max_j=1)
    save_stitched(value, tmp_path / "value", {"backbone": "random_tiny", "reward": "random_tiny_clip"})
    return tmp_path / "value"


def _partial_worker(value_path, value="stitched"):
    return _tiny_worker(RolloutConfig(num_workers=1, batch_size=3, sampler=SamplerConfig(num_steps=4), horizon="1-2",
                                      value=ValueConfig(kind=value, path=str(value_path))))


def test_partial_rollouts_stop_at_their_step_and_are_scored_by_the_frozen_value(value_export):
    worker = _partial_worker(value_export)
    prompts, seeds, stops = ["a red seven"] * 2 + ["two blue threes"] * 2, [5, 6, 7, 8], [1, 1, 2, 2]
    batch = worker.sample(prompts, [0, 0, 1, 1], seeds, stops)
    times = worker.model.schedule(4, 8, 8)
    torch.testing.assert_close(batch.times, times[torch.tensor(stops)].float())
    # Row 0 is the prefix of its own full trajectory: the same latent a full sampler reaches after 1 step.
    from diffusion.sampling import sample

    cond = worker.model.encode_prompt(prompts[:1])
    with torch.no_grad():
        prefix = sample(worker.model, cond, times=times, seeds=[5], latent_shape=(4, 8, 8), config=SamplerConfig(num_steps=4), stop=1).final
        torch.testing.assert_close(batch.latents[:1], prefix)
        expected = worker.value(batch.latents, batch.times, prompts)
    torch.testing.assert_close(batch.rewards, expected)
    # New policy weights move the samples, never the value's backbone.
    worker.load_weights({n: p.detach() + 0.05 for n, p in worker.model.transformer.named_parameters()}, version=1)
    with torch.no_grad():
        torch.testing.assert_close(worker.value(batch.latents, batch.times, prompts), expected)


def test_the_tweedie_ablation_scores_partial_rollouts_with_the_frozen_base_models_estimate():
    from diffusion.model_config import build_flow_model
    from value.baselines import TweedieValue

    worker = _partial_worker("", value="tweedie")
    prompts, stops = ["a red seven", "two blue threes"], [1, 2]
    # The policy has moved away from the base: the value must still read the base generator.
    worker.load_weights({n: p.detach() + 0.05 for n, p in worker.model.transformer.named_parameters()}, version=1)
    batch = worker.sample(prompts, [0, 1], [5, 6], stops)
    base = build_flow_model(MODEL).eval()
    (reward,) = worker.reward.models.values()
    with torch.no_grad():
        expected = TweedieValue(base, reward, cfg_scale=1.0)(batch.latents, batch.times, prompts)
        moved = TweedieValue(worker.model, reward, cfg_scale=1.0)(batch.latents, batch.times, prompts)
    torch.testing.assert_close(batch.rewards, expected)
    assert not torch.allclose(moved, expected)


def test_a_tweedie_scored_stop_one_step_before_the_end_is_the_full_rollouts_reward():
    # The sampler's last step to t = 0 is z - t u(z), Tweedie's estimate: the two modes must agree exactly,
    # which ties the partial-rollout path (stops, batching by stop, scoring) to the full one.
    prompts, groups, seeds = ["a red seven", "two blue threes", "a green one"], [0, 1, 2], [5, 6, 7]
    full = _tiny_worker(RolloutConfig(num_workers=1, batch_size=3, sampler=SamplerConfig(num_steps=4))).sample(prompts, groups, seeds)
    partial = _partial_worker("", value="tweedie").sample(prompts, groups, seeds, [3, 3, 3])
    torch.testing.assert_close(partial.rewards, full.rewards)


def test_partial_horizons_need_a_value_and_stops_inside_the_schedule():
    with pytest.raises(ValueError, match="rollout.value.path"):
        RolloutConfig(horizon="2-3")
    with pytest.raises(ValueError, match="stops must lie in 1..10"):
        RolloutConfig(horizon="5-11", value=ValueConfig(path="/v"))
    with pytest.raises(ValueError, match="is not 'full'"):
        RolloutConfig(horizon="late", value=ValueConfig(path="/v"))
    with pytest.raises(ValueError, match="rollout.horizon='5-3': a window 'a-b' runs from its first stop to its last; write '3-5'"):
        RolloutConfig(horizon="5-3", value=ValueConfig(path="/v"))
    with pytest.raises(ValueError, match="value.kind='mc' is not one of"):
        RolloutConfig(horizon="2-3", value=ValueConfig(kind="mc", path="/v"))
    assert RolloutConfig(horizon="2-3", value=ValueConfig(kind="tweedie")).value.path == ""  # the ablation reads no export
