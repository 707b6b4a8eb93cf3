import numpy as np
import torch

from diffusion.sampling import SamplerConfig
from tests.tiny_models import tiny_clip_reward
from world.preference_pairs import generated_pairs, hard_negative_pairs, hard_negative_scenes
from world.prompts import satisfies


def test_a_hard_negative_pair_is_a_scene_that_satisfies_its_caption_against_one_that_fails_it():
    specs, chosen, rejected = hard_negative_scenes(60, np.random.default_rng(0))
    assert len(specs) == len(chosen) == len(rejected) == 60
    assert all(satisfies(s, c.cells) and not satisfies(s, r.cells) for s, c, r in zip(specs, chosen, rejected))
    assert len({s.family for s in specs}) == 6  # every caption family


def test_hard_negative_pairs_are_encoded_and_seeded(sd3_model):
    a = hard_negative_pairs(sd3_model, 6, split="test", seed=3)
    b = hard_negative_pairs(sd3_model, 6, split="test", seed=3)
    assert a.prompts == b.prompts and a.sources == ["hard_negative"] * 6
    assert a.chosen.shape == (6, *sd3_model.latent_shape(32, 32))
    torch.testing.assert_close(a.chosen, b.chosen)
    assert not torch.allclose(a.chosen, a.rejected)


def test_generated_pairs_rank_a_prompt_s_samples_by_the_reward(sd3_model):
    reward = tiny_clip_reward()
    prompts = ["a red one", "two blue sevens"]
    pairs = generated_pairs(sd3_model, reward, prompts, samples_per_prompt=4, sampler=SamplerConfig(num_steps=2),
                            margin=0.0, seed=0)
    assert set(pairs.prompts) <= set(prompts) and len(pairs) <= 4  # at most 2 disjoint pairs a prompt
    with torch.no_grad():
        s_w = reward(sd3_model.decode(pairs.chosen), pairs.prompts)
        s_l = reward(sd3_model.decode(pairs.rejected), pairs.prompts)
    assert (s_w > s_l).all()
