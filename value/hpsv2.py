"""HPSv2 / HPSv2.1: an open_clip ViT-H-14 finetuned on human preferences.

The checkpoint (`HPS_v2.1_compressed.pt`) is a torch.save'd {"state_dict": ...} of a full open_clip
CLIP model, loaded with weights_only=True. The score is the plain cosine between the L2-normalised
image and text embeddings (no logit scale), on images resized by their longest side to 224 and
zero-padded to a square, as HPSv2's `preprocess_val` does. v2.0 and v2.1 scores are not comparable.
"""

from value.clip_score import CLIPScore


def load_hpsv2(path: str, *, arch: str = "ViT-H-14") -> CLIPScore:
    return CLIPScore.from_open_clip(arch, path, scale=1.0, resize_mode="longest")
