import json

import open_clip
import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from diffusion.tiny import clip_tokenizer
from value.tiny import TINY_CLIP_CONFIG, tiny_open_clip

TINY_ARCH = "tiny-test-vit"  # registered with open_clip below, as a real architecture name would be


@pytest.fixture(scope="session")
def tiny_arch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / f"{TINY_ARCH}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(folder / f"{TINY_ARCH}.json")
    return TINY_ARCH


@pytest.fixture
def clip_model():
    return tiny_open_clip(seed=1)


@pytest.fixture
def hf_clip_dir(tmp_path):
    """A tiny transformers CLIPModel + its tokenizer saved the way transformers 5 saves them."""
    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(2)
    CLIPModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 48, 48, generator=g)


PROMPTS = ["a red seven", "two blue threes", "a green five above a red one"]
