"""One config builds every kind of value; a stitched one without its folder is named by its key."""

import pytest
import torch

from tests.tiny_models import stitched_from_fit, tiny_clip_reward
from value.baselines import MonteCarloValue, TweedieValue
from value.stitched import save_stitched
from value.value_config import ValueConfig, build_value


def test_each_kind_builds_its_value(sd3_model, latents, tmp_path):
    reward = tiny_clip_reward()
    g = torch.Generator().manual_seed(0)
    saved = stitched_from_fit(sd3_model, reward, [torch.rand(6, 3, 16, 16, generator=g) for _ in range(2)], max_j=2)
    save_stitched(saved, tmp_path / "value", {"backbone": {}, "reward": {}})
    z, t = latents
    prompts = ["a red seven", "two blue threes"]
    stitched = build_value(ValueConfig(path=str(tmp_path / "value")), sd3_model, reward, key="rollout.value")
    with torch.no_grad():
        assert torch.equal(stitched(z, t, prompts), saved(z, t, prompts))
    tweedie = build_value(ValueConfig(kind="tweedie", cfg_scale=3.0), sd3_model, reward, key="steer.value")
    assert isinstance(tweedie, TweedieValue) and tweedie.cfg_scale == 3.0
    mc = build_value(ValueConfig(kind="monte_carlo", rollouts=3, num_steps=4), sd3_model, reward, key="v")
    assert isinstance(mc, MonteCarloValue) and mc.rollouts == 3 and mc.sampler.num_steps == 4


def test_bad_value_configs_name_the_key():
    with pytest.raises(ValueError, match="value.kind='mc' is not one of"):
        ValueConfig(kind="mc")
    with pytest.raises(ValueError, match="set draft.value.path.*draft.value.kind=tweedie"):
        ValueConfig().check_path("draft.value", "draft.horizon='3-7' maximises a value")
    ValueConfig(kind="tweedie").check_path("draft.value", "unused")  # nothing to read


def test_a_missing_folder_names_the_key(sd3_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="rollout.value.path: no stitched value"):
        build_value(ValueConfig(path=str(tmp_path / "nope")), sd3_model, tiny_clip_reward(), key="rollout.value")
