"""Tiny, randomly initialised instances of the real pipeline classes (SD3 and FLUX), built offline.

They are the same diffusers / transformers classes as SD3.5 and FLUX.1 with small configs, so the
loaders, samplers and feature taps are exercised on exactly the code paths the real weights take.
The tiny world trains the SD3 one; tests use both as fixtures. Deterministic given the seed.
"""

import string

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
from transformers import T5Config, T5EncoderModel, T5TokenizerFast

BOS, EOS = "<|startoftext|>", "<|endoftext|>"  # CLIP's special tokens, in open_clip and transformers alike

# Whole-word tokens for the tiny world's captions (colours, digit names, counts, relations); any other
# word still tokenizes, character by character.
CAPTION_WORDS = (
    "a", "an", "and", "of", "the", "left", "right", "above", "below", "one", "two", "three", "four", "five",
    "six", "seven", "eight", "nine", "zero", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens",
    "eights", "nines", "zeros", "red", "green", "blue", "yellow", "magenta", "cyan", "white", "orange", "photo",
)


def bpe_tokenizer(merges: list[tuple[str, str]], *, max_length: int) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over lowercase letters and digits with `merges` (in rank order): the vocabulary
    is every character (alone and word-final), each merge's result, then the start and end tokens."""
    vocab: dict[str, int] = {}
    for c in string.ascii_lowercase + string.digits:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab[BOS], vocab[EOS] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def clip_tokenizer(words: tuple[str, ...] = CAPTION_WORDS, *, max_length: int = 24) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over lowercase letters and digits, with merges that make each of `words` one token."""
    merges: list[tuple[str, str]] = []
    # Longest words first: BPE applies the lowest-ranked merge anywhere in a word, so a short word's
    # merges ranked early would cut longer words ("an" inside "orange").
    for word in sorted(words, key=len, reverse=True):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
            pieces = ["".join(pair)] + pieces[2:]
    return bpe_tokenizer(merges, max_length=max_length)


def _clip_text_config(tokenizer: CLIPTokenizer, hidden: int, projection: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=projection,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def tiny_vae(*, latent_channels: int, scaling_factor: float, shift_factor: float, seed: int) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def tiny_sd3_pipeline(seed: int = 0, *, words: tuple[str, ...] = CAPTION_WORDS) -> StableDiffusion3Pipeline:
    """SD3.5-shaped (dual attention in block 0, RMS qk-norm, two CLIP text encoders, no T5), 2 blocks."""
    tokenizer = clip_tokenizer(words)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden=16, projection=16))
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden=16, projection=16))
    torch.manual_seed(seed + 2)
    transformer = SD3Transformer2DModel(
        sample_size=16,
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,  # >= the two CLIP hidden sizes side by side
        caption_projection_dim=16,
        pooled_projection_dim=32,  # = the two CLIP projections side by side
        pos_embed_max_size=16,
        dual_attention_layers=(0,),
        qk_norm="rms_norm",
    )
    vae = tiny_vae(latent_channels=4, scaling_factor=1.5305, shift_factor=0.0609, seed=seed + 3)
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=clip_tokenizer(words),
        text_encoder_3=None,
        tokenizer_3=None,
    )


def t5_tokenizer(words: tuple[str, ...] = CAPTION_WORDS) -> T5TokenizerFast:
    """A Unigram (sentencepiece-style) tokenizer with one piece per character and per word in `words`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + w, -1.0) for w in words]
    pieces += [(c, -5.0) for c in "\u2581" + string.ascii_lowercase + string.digits]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    return T5TokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0)


def tiny_flux_pipeline(seed: int = 0, *, words: tuple[str, ...] = CAPTION_WORDS) -> FluxPipeline:
    """FLUX.1-dev-shaped (double + single stream blocks, rotary axes, guidance embedding, CLIP + T5)."""
    tokenizer = clip_tokenizer(words)
    tokenizer_2 = t5_tokenizer(words)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden=16, projection=16))
    torch.manual_seed(seed + 1)
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
                 pad_token_id=tokenizer_2.pad_token_id, eos_token_id=tokenizer_2.eos_token_id)
    )
    torch.manual_seed(seed + 2)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels x 2x2 packing
        num_layers=1,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # = T5 d_model
        pooled_projection_dim=16,  # = CLIP hidden size
        guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
    )
    vae = tiny_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 3)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096
    )
    return FluxPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
    )
