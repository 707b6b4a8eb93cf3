"""The world builder on a miniature recipe (a few steps per component): deterministic from its seed,
reuses what is there, and rebuilds a corrupted component and what depends on it."""

import json

import pytest

from tests.tiny_models import MINI_WORLD_RECIPE as TINY_RECIPE
from world.build import WorldConfig, build_world


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    logs: list[str] = []
    card = build_world(WorldConfig(dir=str(root / "a"), **TINY_RECIPE), log=logs.append)
    return root, card, logs


def _corrupt_and_rebuild(world, component: str) -> tuple[dict, list[str]]:
    """Truncate the component's weights (as a killed copy would) and build again: (card, log lines)."""
    weights = next((world / component).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    logs: list[str] = []
    return build_world(WorldConfig(dir=str(world), **TINY_RECIPE), log=logs.append), logs


def test_the_same_seed_gives_the_same_world(built):
    root, card, _ = built
    again = build_world(WorldConfig(dir=str(root / "b"), **TINY_RECIPE), log=lambda _: None)
    assert again["components"] == card["components"]  # identical bytes, file by file
    assert again["gates"] == card["gates"]


def test_card_has_the_gates_costs_and_loads_back(built):
    root, card, _ = built
    for key in ("vae_psnr_db", "clip_zero_shot_acc", "pref_pairwise_acc", "verifier_acc",
                "base_prompt_acc_cfg1", "base_prompt_acc_cfg", "base_per_family_cfg1"):
        assert key in card["gates"], key
    assert card["costs"]["tiny"]["backbone_forward_flops"] > 0
    assert card["costs"]["sd35m_clip_vitl14_336"]["backbone_over_reward_tower"] > 10
    assert json.loads((root / "a" / "card.json").read_text()) == card
    assert (root / "a" / "grids" / "color_attr_cfg.png").is_file()


def test_second_call_reuses_and_a_corrupt_component_is_rebuilt(built):
    root, card, _ = built
    logs: list[str] = []
    assert build_world(WorldConfig(dir=str(root / "a"), **TINY_RECIPE), log=logs.append) == card
    assert all("reusing" in line for line in logs)
    rebuilt, logs = _corrupt_and_rebuild(root / "a", "vae")
    assert any("vae: building (corrupt" in line for line in logs)
    assert any("generator: building (vae was rebuilt)" in line for line in logs)
    assert any("clip: reusing" in line for line in logs)
    assert rebuilt["components"] == card["components"]  # deterministic, so the same bytes come back


def test_the_generator_is_rebuilt_with_the_text_towers_it_reads(built):
    root, card, _ = built
    rebuilt, logs = _corrupt_and_rebuild(root / "a", "preference")
    assert any("preference: building (corrupt" in line for line in logs)
    assert any("generator: building (preference was rebuilt)" in line for line in logs)
    assert any("clip: reusing" in line for line in logs)
    assert rebuilt["components"] == card["components"]
