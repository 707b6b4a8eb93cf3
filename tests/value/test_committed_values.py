"""The committed values (artifacts/values/) load against the committed tiny world through the same
fingerprint checks every job runs, with the stitch point and feature mode their build summaries state."""

import json

import pytest
import torch

from diffusion.model_config import ModelConfig, build_flow_model
from launch.config_schema import REPO_ROOT, world_dir
from value.reward_config import RewardConfig, build_reward_model
from value.stitched import load_stitched

VALUES = REPO_ROOT / "artifacts" / "values"
pytestmark = pytest.mark.skipif(not (world_dir() / "card.json").is_file(), reason="the tiny world is not built")


@pytest.fixture(scope="module")
def world_models():
    backbone = build_flow_model(ModelConfig(path=str(world_dir() / "generator"), max_sequence_length=1))
    reward = build_reward_model(RewardConfig(kind="open_clip", path=str(world_dir() / "preference")))
    return backbone, reward


@pytest.mark.parametrize(("name", "prompted"), [("tiny_pref", False), ("tiny_pref_i1", False),
                                                ("tiny_pref_prompted", True)])
def test_a_committed_value_loads_as_its_build_summary_says(world_models, name, prompted):
    backbone, reward = world_models
    value = load_stitched(VALUES / name, backbone, reward)
    summary = json.loads((VALUES / name / "stitch_summary.json").read_text())
    assert [value.i, value.j] == summary["stitch_point"] and value.features.prompted is prompted
    z = torch.randn(2, *backbone.latent_shape(32, 32), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.5, 0.5])
    with torch.no_grad():
        one, other = value(z, t, ["a red seven", "a red seven"]), value(z, t, ["two blue threes", "two blue threes"])
        value.features.prompted = not prompted  # the same weights read the other way score differently
        flipped = value(z, t, ["a red seven", "a red seven"])
    assert torch.isfinite(one).all() and not torch.allclose(one, other)
    assert not torch.allclose(one, flipped, atol=1e-4)


def test_the_committed_latent_reward_loads_and_reads_the_prompt(world_models):
    from value.latent_reward_checkpoint import load_latent_reward

    backbone, _ = world_models
    model = load_latent_reward(VALUES / "tiny_latent_reward", backbone)
    summary = json.loads((VALUES / "tiny_latent_reward" / "latent_reward_summary.json").read_text())
    assert model.config.blocks == 2 and summary["train_seconds"] < 600  # the budget: under 10 minutes
    z = torch.randn(2, *backbone.latent_shape(32, 32), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.5, 0.5])
    with torch.no_grad():
        one, other = model(z, t, ["a red seven", "a red seven"]), model(z, t, ["two blue threes", "two blue threes"])
    assert torch.isfinite(one).all() and not torch.allclose(one, other)
