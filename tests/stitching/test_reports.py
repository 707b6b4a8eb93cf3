"""The reports' statistics: calibration's rank correlations, pooled over prompts and within a prompt's
latents, and fidelity's training-free reference."""

import pytest
import torch

from stitching.reports import spearman, within_prompt_spearman


def test_within_prompt_spearman_ignores_what_a_prompts_latents_share():
    truth = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    prompts = ["a seven"] * 3 + ["two threes"] * 3
    guess = truth + torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # right within each prompt, offsets across
    assert within_prompt_spearman(guess, truth, prompts) == pytest.approx(1.0)
    assert spearman(guess, truth) < 0
    reversed_in_one = torch.tensor([0.3, 0.2, 0.1, 0.4, 0.5, 0.6])
    assert within_prompt_spearman(reversed_in_one, truth, prompts) == pytest.approx(0.0)  # mean of -1 and 1


def test_prompts_with_fewer_than_three_latents_are_left_out():
    truth = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    assert within_prompt_spearman(-truth, truth, ["a", "a", "b", "b", "b"]) == pytest.approx(-1.0)
    assert within_prompt_spearman(truth, truth, ["a", "b", "c", "d", "e"]) is None


def test_calibration_prompts_repeat_in_groups_spread_over_a_list_ordered_by_family():
    from stitching.pipeline import spread_prompts
    from world.prompts import FAMILIES, all_eval_prompts, parse_prompt

    prompts = all_eval_prompts(8)
    assert spread_prompts(prompts, 48, 1) == prompts
    grouped = spread_prompts(prompts, 96, 8)
    assert len(grouped) == 96 and all(len(set(grouped[k : k + 8])) == 1 for k in range(0, 96, 8))
    assert {parse_prompt(p).family for p in grouped} == set(FAMILIES)


def test_the_tweedie_reference_at_t_0_is_the_vae_round_trip(sd3_model, clip_reward):
    from stitching.reports import tweedie_reader

    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    captions = ["a red seven", "two blue threes", "a green one"]
    with torch.no_grad():
        round_trip = clip_reward(sd3_model.decode(sd3_model.encode(images)), captions)
        assert torch.allclose(tweedie_reader(clip_reward, sd3_model, 0.0, seed=0)(images, captions), round_trip)
        noisy = tweedie_reader(clip_reward, sd3_model, 0.5, seed=0)
        assert not torch.allclose(noisy(images, captions), round_trip)
        again = tweedie_reader(clip_reward, sd3_model, 0.5, seed=0)  # seeded noise: the same z_t
        assert torch.equal(again(images, captions), noisy(images, captions))


@pytest.mark.parametrize("prompted", [False, True])
def test_the_stitched_reader_scores_each_caption_as_the_value_does(sd3_model, clip_reward, probe_images, prompted):
    """Null-prompt features are read once per image batch; prompted ones again for each caption."""
    from stitching.reports import stitched_reader
    from tests.tiny_models import stitched_from_fit

    value = stitched_from_fit(sd3_model, clip_reward, probe_images, max_j=1, prompted=prompted)
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    reader = stitched_reader(value, sd3_model, 0.4, seed=0)
    with torch.no_grad():
        z0 = sd3_model.encode(images)
        z_t = 0.6 * z0 + 0.4 * torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
        for captions in (["a red seven", "two blue threes", "a green one"], ["a one", "a two", "a three"]):
            expected = value(z_t, torch.full((3,), 0.4), captions)
            assert torch.allclose(reader(images, captions), expected, atol=1e-5)
