"""Cutting the image tower at block j and running the rest gives the full model's output, for every j."""

import pytest
import torch

from tests.value.conftest import PROMPTS
from value.clip_score import CLIPScore
from value.reward_config import RewardConfig, build_reward_model


def _rewards(hf_clip_dir):
    return {
        "open_clip": build_reward_model(RewardConfig(kind="random_tiny_clip", seed=4)),
        "transformers": CLIPScore.from_transformers(str(hf_clip_dir)),
    }


@pytest.mark.parametrize("backend", ["open_clip", "transformers"])
def test_tail_of_tokens_at_j_equals_the_full_reward(backend, hf_clip_dir, images):
    reward = _rewards(hf_clip_dir)[backend]
    tower = reward.tower
    with torch.no_grad():
        full = reward(images, PROMPTS)
        pixels = reward.preprocess(images)
        for j in range(1, tower.num_blocks + 1):
            tokens = reward.tokens_at(pixels, j)
            gh, gw = tower.grid
            assert tokens.shape == (3, tower.num_prefix_tokens + gh * gw, tower.width)
            via_tail = reward.score_embedding(reward.tail(tokens, j), PROMPTS)
            assert torch.allclose(via_tail, full, atol=1e-5), f"j={j}"


@pytest.mark.parametrize("backend", ["open_clip", "transformers"])
def test_tokens_at_1_are_the_patch_embeddings_before_positions(backend, hf_clip_dir, images):
    reward = _rewards(hf_clip_dir)[backend]
    with torch.no_grad():
        pixels = reward.preprocess(images)
        tokens = reward.tokens_at(pixels, 1)
        # The class slot is the bare class embedding: no positional embedding added yet.
        assert torch.allclose(tokens[:, 0], tokens[0, 0].expand(3, -1))
        # Patch tokens are linear in the pixels (a conv without bias, or with one, before any norm).
        doubled = reward.tokens_at(2 * pixels, 1)[:, 1:] - tokens[:, 1:]
        zero = reward.tokens_at(0 * pixels, 1)[:, 1:]
        assert torch.allclose(doubled, tokens[:, 1:] - zero, atol=1e-5)


def test_block_index_is_checked(hf_clip_dir, images):
    reward = _rewards(hf_clip_dir)["open_clip"]
    with pytest.raises(ValueError, match="block j=0"):
        reward.tokens_at(reward.preprocess(images), 0)
    with pytest.raises(ValueError, match=f"block j={reward.tower.num_blocks + 1}"):
        reward.tail(torch.zeros(1, 17, 64), reward.tower.num_blocks + 1)


def test_a_clip_folder_without_tokenizer_files_is_refused_naming_the_setting(hf_clip_dir, tmp_path):
    """transformers 5 builds an almost empty tokenizer from such a folder instead of raising: every
    prompt would read as the same ids and score the same."""
    import shutil

    bare = tmp_path / "model_only"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(hf_clip_dir / name, bare / name)
    with pytest.raises((ValueError, FileNotFoundError), match="reward.tokenizer_path"):
        CLIPScore.from_transformers(str(bare))
    assert CLIPScore.from_transformers(str(bare), tokenizer_path=str(hf_clip_dir)) is not None
