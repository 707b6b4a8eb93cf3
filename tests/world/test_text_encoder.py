"""An open_clip text tower converted to transformers' CLIPTextModelWithProjection reads captions as
open_clip does: the same BPE pieces and the same embedding (seeded random CLIP, so deterministic)."""

import numpy as np
import open_clip
import torch

from world.clip import captioned_scenes, clip_tokenizer, new_clip
from world.text_encoder import caption_tokenizer, text_encoder


def _captions() -> list[str]:
    # Every family, and the words open_clip splits in two ("cyan", "sixes", "nines").
    captions = sorted({p.text() for _, p in captioned_scenes(600, np.random.default_rng(0))})
    return captions + ["a cyan six left of a cyan nine", "four sixes", "three nines"]


def test_the_tokenizer_splits_captions_into_open_clips_pieces():
    tokenizer = caption_tokenizer(max_length=12)
    captions = _captions()
    ours = tokenizer(captions, padding="max_length", max_length=12, return_tensors="pt").input_ids
    theirs = clip_tokenizer()(captions)
    source = open_clip.tokenizer.SimpleTokenizer()
    pieces = {v: k for k, v in tokenizer.get_vocab().items()}
    to_open_clip = source.encoder | {"<|startoftext|>": source.sot_token_id, "<|endoftext|>": source.eot_token_id}
    assert len(tokenizer) < 200  # a small slice of open_clip's 49,408 pieces
    for row_ours, row_theirs in zip(ours, theirs, strict=True):
        n = int((row_theirs != 0).sum())  # open_clip pads with 0, ours with the end token
        assert n <= 12
        assert [to_open_clip[pieces[int(i)]] for i in row_ours[:n]] == row_theirs[:n].tolist()


def test_the_converted_encoder_embeds_captions_as_open_clip_does():
    clip = new_clip(seed=3).eval()
    tokenizer = caption_tokenizer(max_length=12)
    encoder = text_encoder(clip, tokenizer)
    captions = _captions()
    ids = tokenizer(captions, padding="max_length", max_length=12, return_tensors="pt").input_ids
    with torch.no_grad():
        ours = encoder(ids).text_embeds
        theirs = clip.encode_text(clip_tokenizer()(captions))
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not any(p.requires_grad for p in encoder.parameters())  # frozen, as SD3's text encoders
