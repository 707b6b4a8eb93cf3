"""The built tiny world (artifacts/world, committed with its recipe): its card meets the gates, and
its parts load through the same code paths as the real checkpoints and still measure what the card says."""

import json

import pytest
import torch
from diffusers import AutoencoderKL

from diffusion.sd3 import SD3FlowModel
from launch.config_schema import world_dir
from value.clip_score import CLIPScore
from value.reward_config import RewardConfig, build_reward_model
from world import clip as world_clip
from world.artifacts import check_component
from world.build import WorldConfig, _recipes, load_generator
from world.prompts import FAMILIES
from world.scenes import DigitBank
from world.vae import round_trip
from world.verifier import cell_accuracy, load_verifier

ROOT = world_dir()
pytestmark = pytest.mark.skipif(not (ROOT / "card.json").is_file(), reason="the tiny world is not built")


@pytest.fixture(scope="module")
def card():
    return json.loads((ROOT / "card.json").read_text())


def test_card_meets_the_gates(card):
    g = card["gates"]
    assert g["vae_psnr_db"] >= 24
    assert g["clip_zero_shot_acc"] >= 0.90
    # Every generated image a reward reads went through the VAE: it must keep what the rewards read.
    assert g["clip_zero_shot_acc_vae"] >= 0.85
    assert g["pref_pairwise_acc"] >= 0.85
    assert g["verifier_acc"] >= 0.97
    assert g["base_prompt_acc_cfg1"] <= 0.60
    assert g["base_prompt_acc_cfg"] > g["base_prompt_acc_cfg1"]
    assert set(g["base_per_family_cfg1"]) == set(FAMILIES)
    assert card["size_mb"] < 30


def test_base_generator_without_cfg_reaches_the_lower_gate(card):
    assert card["gates"]["base_prompt_acc_cfg1"] >= 0.15


def test_full_build_fits_in_fifteen_minutes(card):
    assert card["build_seconds"] < 15 * 60


def test_components_are_complete_and_from_the_default_recipe(card):
    recipes = _recipes(WorldConfig(**{k: v for k, v in card["config"].items() if k != "dir"}))
    for name, recipe in recipes.items():
        assert check_component(ROOT / name, recipe) is None, name
    assert recipes == _recipes(WorldConfig())  # the committed world is what `python launch/world.py` builds


def test_world_loads_through_the_real_code_paths():
    model = load_generator(ROOT)
    assert isinstance(model, SD3FlowModel)
    assert model.pipeline.__class__.__name__ == "StableDiffusion3Pipeline"
    reward = build_reward_model(RewardConfig(kind="open_clip", path=str(ROOT / "clip")))
    assert isinstance(reward, CLIPScore)
    # SD3's text encoders are pretrained CLIPs; the generator's first is the world CLIP's text tower.
    pipeline, caption = model.pipeline, ["a cyan six left of a nine"]
    with torch.no_grad():
        ids = pipeline.tokenizer(caption, padding="max_length", max_length=pipeline.tokenizer.model_max_length, return_tensors="pt")
        ours = pipeline.text_encoder(ids.input_ids).text_embeds
        theirs = reward.text.model.encode_text(world_clip.clip_tokenizer()(caption))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_rewards_and_verifier_still_measure_what_the_card_says(card):
    bank = DigitBank(card["config"]["seed"])
    clip = build_reward_model(RewardConfig(kind="open_clip", path=str(ROOT / "clip")))
    pref = build_reward_model(RewardConfig(kind="open_clip", path=str(ROOT / "preference")))
    # Fresh test scenes (another seed than the card's), so these are re-measurements, not replays.
    assert world_clip.zero_shot_acc(clip, bank, "test", 200, seed=99) >= 0.85
    vae = AutoencoderKL.from_pretrained(ROOT / "vae").eval()
    assert world_clip.zero_shot_acc(clip, bank, "test", 200, seed=99, view=lambda x: round_trip(vae, x)) >= 0.80
    assert world_clip.pairwise_acc(pref, bank, "test", 200, seed=98) >= 0.80
    assert cell_accuracy(load_verifier(ROOT / "verifier"), bank, "test", 200, seed=97) >= 0.95


def test_preference_reward_beats_clip_on_hard_negatives(card):
    assert card["gates"]["pref_pairwise_acc"] > card["gates"]["clip_pairwise_acc"]


def test_generator_samples_are_reproducible():
    model = load_generator(ROOT)
    from diffusion.sampling import SamplerConfig, sample

    cond = model.encode_prompt(["a red seven", "two blue threes"])
    kw = dict(times=model.schedule(4, 8, 8), seeds=[0, 1], latent_shape=(4, 8, 8), config=SamplerConfig(num_steps=4))
    with torch.no_grad():
        assert torch.equal(sample(model, cond, **kw).final, sample(model, cond, **kw).final)
