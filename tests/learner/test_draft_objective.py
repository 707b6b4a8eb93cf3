"""DRaFT's objective on the tiny SD3 and a tiny CLIP reward / stitched value, without DeepSpeed.
Seeded: the same seeds give the same rollouts."""

import copy

import pytest
import torch

from diffusion.lora import LoraConfig
from diffusion.model_config import ModelConfig, build_flow_model
from diffusion.sampling import SamplerConfig, sample
from diffusion.trainable import FinetuneConfig, make_trainable, trainable_weights
from learner.draft_objective import DecodedReward, DraftConfig, draft_loss, rollout_with_grad_tail
from tests.tiny_models import tiny_clip_reward
from value.stitched import BackboneFeatures, StitchedValue, StitchLayer
from value.value_config import ValueConfig

PROMPTS = ["a red seven", "two blue threes"]
SEEDS = [3, 4]


def _policy(mode: str = "lora"):
    torch.manual_seed(0)
    model = build_flow_model(ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8))
    make_trainable(model, FinetuneConfig(mode=mode, lora=LoraConfig(rank=2)))
    return model


def _value(backbone, reward):
    torch.manual_seed(1)
    stitch = StitchLayer(backbone.feature_dim, reward.tower.width, reward.tower.grid)
    return StitchedValue(BackboneFeatures(backbone, 1), reward, j=1, stitch=stitch).requires_grad_(False)


class Recording:
    """The policy's velocity, noting per call whether a graph was being built."""

    def __init__(self, model):
        self.model, self.grad = model, []

    def velocity(self, z, t, cond):
        self.grad.append(torch.is_grad_enabled())
        return self.model.velocity(z, t, cond)


def _loss(model, reference, score, cfg: DraftConfig, stop: int, policy=None):
    times = model.schedule(cfg.sampler.num_steps, 8, 8)
    return draft_loss(policy or model, reference, score, model.encode_prompt(PROMPTS), PROMPTS, times=times, seeds=SEEDS,
                      latent_shape=model.latent_shape(16, 16), cfg=cfg, stop=stop)


@pytest.mark.parametrize("mode", ["lora", "full"])
@pytest.mark.parametrize("horizon", ["full", "2-3"])
def test_gradients_reach_only_the_trainable_weights(mode, horizon):
    model, reward = _policy(mode), tiny_clip_reward().requires_grad_(False)
    frozen_backbone = build_flow_model(ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)).requires_grad_(False)
    score = DecodedReward(model, reward) if horizon == "full" else _value(frozen_backbone, reward)
    cfg = DraftConfig(sampler=SamplerConfig(num_steps=4), horizon=horizon, grad_steps=2, value=ValueConfig(path="v"))
    loss, _ = _loss(model, copy.deepcopy(model), score, cfg, stop=4 if horizon == "full" else 3)
    loss.backward()
    trainable = trainable_weights(model)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values())
    others = [p for p in model.parameters() if all(p is not q for q in trainable.values())]
    others += list(reward.parameters()) + list(frozen_backbone.parameters())
    if horizon != "full":
        others += list(score.parameters())
    assert others and all(p.grad is None for p in others)


def test_no_graph_is_built_past_the_stop_and_only_the_last_k_steps_build_one():
    model, reward = _policy(), tiny_clip_reward().requires_grad_(False)
    decoded = []
    model_decode = model.decode
    model.decode = lambda z: decoded.append(z) or model_decode(z)
    value = _value(build_flow_model(ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)), reward)
    seen = []
    score = lambda z, t, prompts: seen.append((z, t)) or value(z, t, prompts)  # noqa: E731
    policy = Recording(model)
    cfg = DraftConfig(sampler=SamplerConfig(num_steps=6), horizon="2-4", grad_steps=2, value=ValueConfig(path="v"))
    _loss(model, copy.deepcopy(model), score, cfg, stop=3, policy=policy)
    assert policy.grad == [False, True, True]  # 3 of 6 steps: the rollout ends at tau, its last 2 steps differentiated
    assert decoded == []  # DRaFT + value never decodes
    (z, t), times = seen[0], model.schedule(6, 8, 8)
    torch.testing.assert_close(t, torch.full((2,), times[3].item()))
    assert z.grad_fn is not None


def test_the_rollout_is_the_samplers_trajectory_to_the_stop():
    """The same seeds give the plain sampler's z_tau, for the ODE and the SDE."""
    model = _policy()
    cond, times = model.encode_prompt(PROMPTS), model.schedule(5, 8, 8)
    for config in (SamplerConfig(num_steps=5), SamplerConfig(num_steps=5, sde_noise=0.7)):
        tail = rollout_with_grad_tail(model, cond, times=times, seeds=SEEDS, latent_shape=(4, 8, 8), sampler=config, stop=3, grad_steps=1)
        with torch.no_grad():
            plain = sample(model, cond, times=times, seeds=SEEDS, latent_shape=(4, 8, 8), config=config, stop=3).final
        torch.testing.assert_close(tail.z.detach(), plain)
        assert tail.step_inputs[0][0].grad_fn is None  # the state entering the differentiated steps is a constant


def test_the_regulariser_is_zero_at_the_reference_and_grows_as_the_policy_moves():
    model, reward = _policy("full"), tiny_clip_reward().requires_grad_(False)
    cfg = DraftConfig(sampler=SamplerConfig(num_steps=3), grad_steps=1, reg_weight=0.5)
    reference = copy.deepcopy(model)
    loss, parts = _loss(model, reference, DecodedReward(model, reward), cfg, stop=3)
    assert parts["reg"] == 0.0 and loss.item() == pytest.approx(-parts["score"])
    with torch.no_grad():
        for p in trainable_weights(model).values():
            p.add_(0.05 * torch.randn_like(p))
    loss, parts = _loss(model, reference, DecodedReward(model, reward), cfg, stop=3)
    assert parts["reg"] > 0 and loss.item() == pytest.approx(-parts["score"] + 0.5 * parts["reg"], rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(horizon="3-7", grad_steps=4, value=ValueConfig(path="v")), "draft.grad_steps=4 exceeds the 3 steps"),
        (dict(horizon="3-7"), "set draft.value.path"),
        (dict(horizon="3-11", value=ValueConfig(path="v")), "stops must lie in 1..10"),
        (dict(horizon="late", value=ValueConfig(path="v")), "is not 'full', a step 'k' or a window"),
        (dict(grad_steps=0), "must be at least 1"),
    ],
)
def test_bad_draft_configs_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DraftConfig(**kwargs)
