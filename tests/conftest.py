"""Shared fixtures: tiny seeded instances of the real model classes, built offline on CPU."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach a hub, here or in CI
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion.flux import FluxFlowModel  # noqa: E402
from diffusion.sd3 import SD3FlowModel  # noqa: E402
from diffusion.tiny import tiny_flux_pipeline, tiny_sd3_pipeline  # noqa: E402


@pytest.fixture(scope="session")
def sd3_dir(tmp_path_factory):
    """A tiny SD3 pipeline saved with save_pretrained (the diffusers layout SD3.5 ships in)."""
    path = tmp_path_factory.mktemp("sd3")
    tiny_sd3_pipeline(seed=0).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def flux_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("flux")
    tiny_flux_pipeline(seed=0).save_pretrained(path)
    return path


@pytest.fixture
def sd3_model():
    return SD3FlowModel(tiny_sd3_pipeline(seed=0), max_sequence_length=8)


@pytest.fixture
def flux_model():
    return FluxFlowModel(tiny_flux_pipeline(seed=0), max_sequence_length=8)


@pytest.fixture
def latents():
    """(2, 4, 8, 8) latents and times (2,): the tiny VAE's latent for 16x16 images."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 8, 8, generator=g), torch.tensor([0.3, 0.8])


@pytest.fixture(scope="session")
def mini_world(tmp_path_factory):
    """A tiny world built from a few steps per component (quality does not matter, formats do)."""
    from tests.tiny_models import MINI_WORLD_RECIPE
    from world.build import WorldConfig, build_world

    root = tmp_path_factory.mktemp("mini_world") / "world"
    build_world(WorldConfig(dir=str(root), **MINI_WORLD_RECIPE), log=lambda _: None)
    return root


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session's actor tests (logical CPUs: actors here are light on a 2-core box)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
