"""DPS guidance: the guided step's sign and scale on a value with a known gradient, exact reduction to the
plain sampler at scale 0, and where the gradient's graph runs (value-DPS: never the decoder)."""

import pytest
import torch

from diffusion.sampling import SamplerConfig, sample
from rollout.guidance import GuidanceConfig, dps_sample, step_set, velocity_and_gradient
from tests.tiny_models import tiny_clip_reward
from value.baselines import TweedieValue
from value.stitched import BackboneFeatures, StitchedValue, StitchLayer
from value.value_model import ValueModel


class LinearValue(ValueModel):
    """V(z) = <a, z> per row: grad_z V = a everywhere."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = a

    def forward(self, z, t, prompts):
        return (z * self.a).flatten(1).sum(1)


def _guided_minus_plain(model, guidance: GuidanceConfig, times: torch.Tensor, a: torch.Tensor, seed: int = 0):
    cond = model.encode_prompt(["a red seven", "two blue threes"])
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(seed))
    sampler = SamplerConfig(num_steps=1, sde_noise=0.5)

    def run(g):
        gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
        return dps_sample(model, LinearValue(a), z, cond, ["a", "b"], times=times, generators=gens, sampler=sampler, guidance=g)

    return run(guidance) - run(GuidanceConfig(scale=0.0))


@pytest.mark.parametrize("schedule,weight", [("constant", 1.0), ("snr", 3.0)])
def test_a_guided_step_moves_along_the_gradient_by_dt_times_scale_times_weight(sd3_model, schedule, weight):
    # One SDE step from t = 0.8 to 0.5 (same noise both runs); snr's weight t / (1 - t) = 4 clips at 3.
    a = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(3))
    diff = _guided_minus_plain(sd3_model, GuidanceConfig(scale=2.0, schedule=schedule, max_weight=3.0),
                               torch.tensor([0.8, 0.5]), a)
    torch.testing.assert_close(diff, (0.3 * 2.0 * weight * a).expand(2, -1, -1, -1), rtol=1e-4, atol=1e-5)
    assert ((diff * a).flatten(1).sum(1) > 0).all()  # the value rises


def _noise_and_generators(seeds):
    """The initial noise as `sample` draws it, and the generators left where `sample` continues from."""
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    return torch.stack([torch.randn(4, 8, 8, generator=g) for g in gens]), gens


def test_unguided_steps_and_scale_zero_are_the_plain_sampler_draw_for_draw(sd3_model):
    times = sd3_model.schedule(4, 8, 8)
    a = torch.ones(4, 8, 8)
    cond = sd3_model.encode_prompt(["a red seven"] * 2)
    sampler = SamplerConfig(num_steps=4, sde_noise=0.7)
    plain = sample(sd3_model, cond, times=times, seeds=[3, 4], latent_shape=(4, 8, 8), config=sampler).final
    z, gens = _noise_and_generators([3, 4])
    off = dps_sample(sd3_model, LinearValue(a), z, cond, ["a"] * 2, times=times, generators=gens, sampler=sampler,
                     guidance=GuidanceConfig(scale=0.0))
    torch.testing.assert_close(off, plain)
    # Guiding only step 3 (the last, t -> 0) changes the result by exactly that step's guidance.
    z, gens = _noise_and_generators([3, 4])
    last = dps_sample(sd3_model, LinearValue(a), z, cond, ["a"] * 2, times=times, generators=gens, sampler=sampler,
                      guidance=GuidanceConfig(scale=1.0, steps="3-3"))
    torch.testing.assert_close(last - plain, (times[3] - times[4]).item() * a.expand(2, -1, -1, -1), rtol=1e-4, atol=1e-5)


def _grad_inputs(module, log: list, name: str):
    def hook(_, args, kwargs):
        inputs = list(args) + list(kwargs.values())
        log.append((name, any(isinstance(x, torch.Tensor) and x.requires_grad for x in inputs)))
    return module.register_forward_pre_hook(hook, with_kwargs=True)


def test_value_dps_never_builds_a_graph_through_the_decoder_or_the_later_blocks(sd3_model):
    sd3_model.requires_grad_(False)
    reward = tiny_clip_reward().requires_grad_(False)
    torch.manual_seed(0)
    stitch = StitchLayer(sd3_model.feature_dim, reward.tower.width, reward.tower.grid, num_prefix=reward.tower.num_prefix_tokens)
    stitched = StitchedValue(BackboneFeatures(sd3_model, 1), reward, j=1, stitch=stitch).requires_grad_(False)
    tweedie = TweedieValue(sd3_model, reward)
    log: list = []
    hooks = [_grad_inputs(sd3_model.vae.decoder, log, "decoder")]
    hooks += [_grad_inputs(b, log, f"block{k + 1}") for k, b in enumerate(sd3_model.transformer.transformer_blocks)]
    z, t = torch.randn(2, 4, 8, 8), torch.full((2,), 0.6)
    cond = sd3_model.encode_prompt(["a red seven", "two blue threes"])
    try:
        _, g_value = velocity_and_gradient(sd3_model, stitched, z, t, cond, None, 1.0, ["a", "b"])
        graph = {name for name, grad in log if grad}
        assert graph == {"block1"}, graph  # the stitch reads block 1; nothing after it, no decoder
        log.clear()
        _, g_tweedie = velocity_and_gradient(sd3_model, tweedie, z, t, cond, None, 1.0, ["a", "b"])
        assert {"decoder", "block2"} <= {name for name, grad in log if grad}  # the hooks do see a graph
    finally:
        for h in hooks:
            h.remove()
    assert g_value.abs().sum() > 0 and g_tweedie.abs().sum() > 0


def test_the_tweedie_gradient_reuses_the_step_velocity_and_equals_autograd_of_the_value(sd3_model):
    sd3_model.requires_grad_(False)
    reward = tiny_clip_reward().requires_grad_(False)
    tweedie = TweedieValue(sd3_model, reward)
    z, t, prompts = torch.randn(2, 4, 8, 8), torch.full((2,), 0.6), ["a red seven", "two blue threes"]
    u, g = velocity_and_gradient(sd3_model, tweedie, z, t, sd3_model.encode_prompt(prompts), None, 1.0, prompts)
    x = z.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(tweedie(x, t, prompts).sum(), x)
    torch.testing.assert_close(g, expected)
    torch.testing.assert_close(u, sd3_model.velocity(z, t, sd3_model.encode_prompt(prompts)))


def test_step_windows_and_bad_guidance_configs():
    assert step_set("2-4", 10) == {2, 3, 4} and step_set("7", 10) == {7} and step_set("", 10) == set()
    assert step_set("5-30", 8) == {5, 6, 7}
    assert GuidanceConfig(steps="").guided_steps(3) == {0, 1, 2}
    with pytest.raises(ValueError, match="step window"):
        GuidanceConfig(steps="early")
    with pytest.raises(ValueError, match="guidance.schedule"):
        GuidanceConfig(schedule="cosine")
