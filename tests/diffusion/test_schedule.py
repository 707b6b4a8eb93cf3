import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift

from diffusion.schedule import flow_schedule, flux_mu, stop_window


@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("num_steps", [1, 5, 25, 28])
def test_static_schedule_equals_diffusers_sigmas(shift, num_steps):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(num_steps)
    assert torch.allclose(flow_schedule(num_steps, shift=shift), scheduler.sigmas, atol=1e-6)


@pytest.mark.parametrize("mu", [0.5, 0.8, 1.15])
def test_dynamic_schedule_equals_diffusers_sigmas(mu):
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    scheduler.set_timesteps(10, mu=mu)
    assert torch.allclose(flow_schedule(10, mu=mu), scheduler.sigmas, atol=1e-6)


def test_flux_mu_matches_the_pipeline():
    for seq_len in (16, 256, 1024, 4096):
        assert flux_mu(seq_len) == pytest.approx(calculate_shift(seq_len))


def test_schedule_runs_from_noise_to_clean():
    t = flow_schedule(25, shift=3.0)
    assert t.shape == (26,) and t[0] == 1.0 and t[-1] == 0.0
    assert (t[1:] < t[:-1]).all()


def test_flux_model_schedule_uses_resolution_dependent_shift(flux_model):
    h = w = 8
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(flux_model.pipeline.scheduler.config)
    scheduler.set_timesteps(6, mu=calculate_shift((h // 2) * (w // 2)))
    assert torch.allclose(flux_model.schedule(6, h, w), scheduler.sigmas, atol=1e-6)


def test_bad_step_count_is_an_error():
    with pytest.raises(ValueError, match="num_steps"):
        flow_schedule(0)


def test_stop_windows_parse_and_name_the_setting_when_wrong():
    assert stop_window("full", 10, key="rollout.horizon") is None
    assert stop_window("5", 10, key="rollout.horizon") == (5, 5)
    assert stop_window("5-7", 10, key="rollout.horizon") == (5, 7)
    for bad, message in (("5-3", "write '3-5'"), ("x", "is not 'full'"), ("0-3", r"1..10 \(rollout.sampler.num_steps=10\)"),
                         ("5-11", "stops must lie in 1..10")):
        with pytest.raises(ValueError, match=message):
            stop_window(bad, 10, key="rollout.horizon")
