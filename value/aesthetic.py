"""The LAION improved aesthetic predictor: an MLP on the L2-normalised CLIP ViT-L/14 (224 px) embedding.

The head file (`sac+logos+ava1-l14-linearMSE.pth`) is a state dict of `layers.{0,2,4,6,7}` Linears with
dropout between them and no activations; the layer sizes are read from the file, so a tiny world's
head on a smaller embedding loads the same way. The CLIP must be OpenAI's ViT-L/14 at 224 px
(`ViT-L-14-quickgelu`): ViT-L/14-336 embeddings are also 768-d and would be silently wrong.
"""

import torch
import torch.nn.functional as F
from torch import nn

from value.image_transform import ImageTransform
from value.open_clip_checkpoint import load_open_clip
from value.reward_model import RewardModel
from value.vision_tower import OpenCLIPVisionTower, VisionTower
from diffusion.weights_file import check_keys, load_into, load_weights_file

_LINEARS = (0, 2, 4, 6, 7)  # Sequential indices of the Linears; 1, 3, 5 are Dropout(0.2, 0.2, 0.1)
_DROPOUT = {1: 0.2, 3: 0.2, 5: 0.1}


class AestheticHead(nn.Module):
    """embedding (B, E) -> score (B,); dims e.g. (768, 1024, 128, 64, 16, 1) for the real head."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        if len(dims) != len(_LINEARS) + 1:
            raise ValueError(f"an aesthetic head has {len(_LINEARS)} Linears, so {len(_LINEARS) + 1} dims; got {dims}")
        layers: list[nn.Module] = []
        for k in range(len(_LINEARS)):
            layers.append(nn.Linear(dims[k], dims[k + 1]))
            if len(layers) in _DROPOUT:
                layers.append(nn.Dropout(_DROPOUT[len(layers)]))
        self.layers = nn.Sequential(*layers)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.layers(embeds).squeeze(-1)

    @classmethod
    def from_file(cls, path: str) -> "AestheticHead":
        state = load_weights_file(path, what="reward.head_path")
        expected = {f"layers.{i}.{p}" for i in _LINEARS for p in ("weight", "bias")}
        check_keys(expected, set(state), what="reward.head_path", path=path,
                   fix="Expected the LAION improved-aesthetic-predictor layout (layers.0/2/4/6/7).")
        dims = tuple(state[f"layers.{i}.weight"].shape[1] for i in _LINEARS) + (state["layers.7.weight"].shape[0],)
        head = cls(dims)
        load_into(head, {k: v.float() for k, v in state.items()}, what="reward.head_path", path=path,
                  fix="Its Linears do not chain; expected the LAION improved-aesthetic-predictor's head")
        return head.eval().requires_grad_(False)


class AestheticScore(RewardModel):
    """Prompts are accepted for the common interface and ignored."""

    def __init__(self, tower: VisionTower, head: AestheticHead, transform: ImageTransform):
        super().__init__()
        self.tower = tower
        self.head = head
        self.transform = transform

    def score_embedding(self, image_embeds: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.head(F.normalize(image_embeds, dim=-1).to(next(self.head.parameters()).dtype))

    @classmethod
    def from_files(cls, *, arch: str, clip_path: str, head_path: str) -> "AestheticScore":
        model, transform = load_open_clip(arch, clip_path)
        head = AestheticHead.from_file(head_path)
        embed_dim = model.visual.output_dim
        if head.layers[0].in_features != embed_dim:
            raise ValueError(
                f"reward.head_path={head_path!r} takes {head.layers[0].in_features}-d embeddings but {arch!r} "
                f"gives {embed_dim}-d; the real head needs ViT-L-14-quickgelu (768-d)"
            )
        return cls(OpenCLIPVisionTower(model.requires_grad_(False).visual), head, transform)
