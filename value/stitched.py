"""StitchVM: a value model that reads noisy latents, V(z_t, t, prompts) = head(tail_j(s(backbone_i(z_t)))).

The frozen diffusion backbone runs its first i blocks on z_t (timestep t, the fixed null prompt, as in
the paper, or with `prompted` each sample's own prompt); the stitch s maps its token grid to the reward
tower's (`LatentFeatures` puts the noisy latent itself in the backbone's place: the paper's VAE-stitch
ablation); the reward tower's blocks j.. (a trainable copy) and the reward's own head (frozen: the text
tower with its cached prompt embeddings, or the aesthetic MLP) give the score. Block indices are
1-based, as in the paper.
"""

import copy
import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from diffusion.atomic_folder import write_folder_atomically
from diffusion.flow_model import FlowModel
from diffusion.prompt_cache import PromptCache
from diffusion.weights_file import load_into, load_weights_file
from value.reward_model import RewardModel
from value.value_model import ValueModel


def upsample_factor(src: tuple[int, int], dst: tuple[int, int]) -> int:
    """r when the grid dst is r x src in both dimensions (an integer r >= 2), else 1."""
    r = dst[0] // src[0]
    return r if r >= 2 and (src[0] * r, src[1] * r) == tuple(dst) else 1


class StitchLayer(nn.Module):
    """s(h) = Up(F(h)) + G(Up(F(h))), then the tower's prefix (class) tokens in front.

    h (B, Cb, gh, gw) -> tokens (B, P + Gh * Gw, Cr) shaped as the reward tower's `tokens_at(., j)`.
    F is a 1x1 conv (initialised from the stage-1 least-squares fit). Up: with `upsample` = r >= 2 (the
    reward grid r x the backbone's, as the tiny world's 8x8 over 4x4), F has r * r * Cr outputs and a
    pixel shuffle gives each of a token's r x r sub-positions its own linear map; bilinear upsampling
    would hand them one interpolated token and lose what tells them apart. Otherwise (SD3.5-M's 64x64 ->
    CLIP-L's 24x24) Up is a bilinear resampling to (Gh, Gw). G is a pointwise MLP with a 1:8 bottleneck
    whose last conv starts at zero, so at initialisation s is exactly the linear fit. `prefix` starts as
    the probe set's mean prefix tokens.
    """

    def __init__(self, in_dim: int, out_dim: int, grid: tuple[int, int], *, num_prefix: int = 1, bottleneck: int = 8,
                 upsample: int = 1):
        super().__init__()
        self.grid = tuple(grid)
        self.upsample = upsample
        self.proj = nn.Conv2d(in_dim, out_dim * upsample**2, 1)
        hidden = max(out_dim // bottleneck, 1)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Conv2d(out_dim, hidden, 1), nn.SiLU(), nn.Conv2d(hidden, out_dim, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.prefix = nn.Parameter(torch.zeros(num_prefix, out_dim))

    @torch.no_grad()
    def init_from_fit(self, weight: torch.Tensor, bias: torch.Tensor, prefix: torch.Tensor) -> None:
        """weight (r * r * Cr, Cb), bias (r * r * Cr,), prefix (P, Cr): the stage-1 fit of tokens = weight @ h
        + bias, rows in pixel-shuffle order (channel-major, then the sub-position)."""
        self.proj.weight.copy_(weight.view(*weight.shape, 1, 1))
        self.proj.bias.copy_(bias)
        self.prefix.copy_(prefix)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.upsample > 1:
            if (h.shape[-2] * self.upsample, h.shape[-1] * self.upsample) != self.grid:
                raise ValueError(
                    f"a {tuple(h.shape[-2:])} feature grid x{self.upsample} is not the stitch's {self.grid}"
                )
            x = F.pixel_shuffle(self.proj(h), self.upsample)
        else:
            x = F.interpolate(self.proj(h), size=self.grid, mode="bilinear", align_corners=False)
        x = x + self.mlp(x)
        tokens = x.flatten(2).transpose(1, 2)  # (B, Gh * Gw, Cr), row-major as a ViT's patches
        return torch.cat([self.prefix.to(tokens.dtype).expand(tokens.shape[0], -1, -1), tokens], dim=1)


class BackboneFeatures(nn.Module):
    """The frozen backbone's image tokens after block i: (B, D, gh, gw).

    Under the fixed null prompt (the paper's), the prompt reaches the value only at the reward's text
    tower, so the value can model E[r(x0) | z_t] under the null-prompt posterior alone. With `prompted`
    the blocks read each sample's own prompt, as the sampler that produced z_t did (measured in
    docs/results/2026-12-01-stitch.md); encodings are cached per prompt, the first `cache_size` kept.
    """

    def __init__(self, backbone: FlowModel, i: int, *, prompted: bool = False, cache_size: int = 4096):
        super().__init__()
        if not 1 <= i <= backbone.num_blocks:
            raise ValueError(f"stitch block i={i} is outside 1..{backbone.num_blocks} (the backbone's blocks)")
        self.__dict__["backbone"] = backbone  # not a submodule: frozen, shared, saved elsewhere
        self.i, self.prompted = i, prompted
        self.conditioning = PromptCache(backbone, cache_size)

    @property
    def dim(self) -> int:
        return self.backbone.feature_dim

    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        cond = self.conditioning(prompts if self.prompted else [""] * z.shape[0])
        # Frozen, so a graph through these blocks serves only a gradient with respect to z (guidance, DRaFT).
        # Distillation's z_t carries none, and a shared backbone's parameters may still require grad: its
        # backward would then run through the blocks for gradients nothing reads (on the tiny world, a
        # distillation step's backward took 2.6x as long).
        with torch.set_grad_enabled(torch.is_grad_enabled() and z.requires_grad):
            return self.backbone.features(z, t, cond, upto=self.i)


class LatentFeatures(nn.Module):
    """The VAE-stitch ablation: the noisy latent itself (no diffusion features), i = 0."""

    i, prompted = 0, False

    def __init__(self, channels: int):
        super().__init__()
        self.dim = channels

    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return z


class StitchedValue(ValueModel):
    """V(z_t, t, prompts) = head(tower_{>=j}(stitch(features(z_t, t, prompts)))). Trainable: `stitch` and `tower`
    (a copy of the reward's image tower, of which blocks >= j run). Frozen: the feature source and the
    reward (its head and text tower, through which alone the prompt enters unless the features are
    prompted)."""

    def __init__(self, features: BackboneFeatures | LatentFeatures, reward: RewardModel, *, j: int, stitch: StitchLayer):
        super().__init__()
        if not 1 <= j <= reward.tower.num_blocks:
            raise ValueError(f"stitch block j={j} is outside 1..{reward.tower.num_blocks} (the reward tower's blocks)")
        self.features = features
        self.__dict__["reward"] = reward  # not a submodule: frozen, shared, saved elsewhere
        self.j = j
        self.stitch = stitch
        self.tower = copy.deepcopy(reward.tower).requires_grad_(True)

    @property
    def i(self) -> int:
        return self.features.i

    def tokens(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """The stitched tokens entering tower block j: (B, P + Gh * Gw, Cr)."""
        if len(prompts) != z.shape[0]:
            raise ValueError(f"{z.shape[0]} latents but {len(prompts)} prompts; give one prompt per latent")
        return self.stitch(self.features(z, t, prompts).to(self.stitch.proj.weight.dtype))

    def embed(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """z (B, C, h, w), t (B,) -> the reward's image embedding (B, E), not normalised."""
        return self.tower.tail(self.tokens(z, t, prompts), self.j)

    def forward(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.reward.score_embedding(self.embed(z, t, prompts), prompts)


WEIGHTS, CARD = "value.safetensors", "value.json"


# What a value is checked against when it is loaded. Weights are compared exactly (their bytes are what
# was loaded from disk); what is computed (the prompt encodings that pass through the tokenizers and
# text encoders, the reward's scores) is compared on a probe with a tolerance, since its last bits move
# with the CPU's vector kernels and library builds: a value must load on any machine with the same files.
PROBE_PROMPTS = ["", "two red sevens above a blue three"]
PROBE_TOLERANCE = 1e-2  # relative: machines differ by ~1e-6 here, another text path or reward by O(1)


def weights_fingerprint(modules: list[nn.Module]) -> str:
    """sha256 over the names, shapes, dtypes and bytes of the modules' parameters. Buffers are left out:
    those of these models are built at construction from the config (diffusers' sin-cos position table,
    open_clip's causal mask), so their bits depend on the machine, not on the files."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.named_parameters():
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # 0-d tensors cannot view as bytes
    return digest.hexdigest()


def probe_summary(x: torch.Tensor) -> list[list[float]]:
    """(B, ...) -> per row [norm, 8 seeded random projections] in float64: computed values, small enough
    for a card, that any change anywhere in a row moves."""
    flat = x.detach().cpu().double().reshape(x.shape[0], -1)
    proj = torch.randn(flat.shape[1], 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return torch.cat([flat.norm(dim=1, keepdim=True), flat @ proj / flat.shape[1] ** 0.5], 1).tolist()


def probe_difference(recorded: list[list[float]], now: list[list[float]]) -> float:
    """The largest difference between two probe summaries, relative to the recorded rows' largest norm
    (inf when their shapes differ)."""
    a, b = torch.tensor(recorded, dtype=torch.float64), torch.tensor(now, dtype=torch.float64)
    if a.shape != b.shape:
        return float("inf")
    return ((a - b).abs().max() / a[:, 0].abs().max().clamp_min(1e-12)).item()


def _public_config(module: nn.Module) -> dict:
    """A diffusers model's config as plain JSON data, without its bookkeeping keys (`_class_name`, versions)."""
    config = getattr(module, "config", {})
    return json.loads(json.dumps({k: v for k, v in dict(config).items() if not k.startswith("_")}, default=str))


def backbone_identity(backbone: FlowModel, i: int) -> dict:
    """What a stitch at block i reads: the transformer's input embeddings and first i blocks and the text
    encoders (weights, exactly), the transformer's config, and the probe prompts' encodings (a probe:
    the tokenizers and text encoders as this machine's libraries run them)."""
    tr = backbone.transformer
    firsts = [m for name, m in tr.named_children() if name not in ("transformer_blocks", "single_transformer_blocks")]
    blocks = list(tr.transformer_blocks) + list(getattr(tr, "single_transformer_blocks", []))
    encoded = backbone.encode_prompt(PROBE_PROMPTS)
    return {
        "weights": weights_fingerprint(firsts + blocks[:i] + list(backbone.text_encoders)),
        "config": _public_config(tr),
        "probe": probe_summary(encoded.prompt_embeds) + probe_summary(encoded.pooled),
    }


@torch.no_grad()
def reward_identity(reward: RewardModel) -> dict:
    """The reward's weights (exactly) and its scores of two seeded images under the probe prompts (a probe)."""
    images = torch.rand(len(PROBE_PROMPTS), 3, 32, 32, generator=torch.Generator().manual_seed(0))
    scores = reward(images.to(reward.device), PROBE_PROMPTS)
    return {"weights": weights_fingerprint([reward]), "probe": probe_summary(scores.view(-1, 1))}


def check_identity(recorded: dict | None, now: dict, *, what: str, folder: Path, name: str,
                   build: str = "launch/stitch.py") -> float:
    """Refuse a value whose recorded identity is not `now`'s (naming what differs and the fix: `build`, the
    command that makes one); returns the probe's relative difference, which is within PROBE_TOLERANCE."""
    fix = f"load it with that {what}, or build a value for this one with {build}"
    head = f"the value in {str(folder)!r} was built for another {what} ({name})"
    if recorded is None:
        raise ValueError(f"the value in {str(folder)!r} has no {what} identity in its {CARD} (an older format); "
                         f"rebuild it with {build}")
    if recorded["weights"] != now["weights"]:
        raise ValueError(f"{head}: its weights differ; {fix}")
    changed = {k: (v, now["config"][k]) for k, v in recorded.get("config", {}).items()
               if k in now.get("config", {}) and now["config"][k] != v}
    if changed:
        listed = ", ".join(f"{k}={old!r} there, {new!r} here" for k, (old, new) in changed.items())
        raise ValueError(f"{head}: its config differs ({listed}); {fix}")
    difference = probe_difference(recorded["probe"], now["probe"])
    if not difference <= PROBE_TOLERANCE:
        raise ValueError(
            f"{head}: same weights, but its probe differs by {difference:.2e} (relative; tolerance {PROBE_TOLERANCE:g}), "
            "so the tokenizers, text encoders or libraries compute something else than when it was built; "
            f"use the {what}'s original tokenizer files, or rebuild the value with {build}"
        )
    return difference


def save_stitched(value: StitchedValue, folder: str | Path, card: dict) -> None:
    """Weights (stitch and tower) as safetensors and a JSON card, the folder replaced at once.
    `card` should name the backbone and reward (`backbone`, `reward`); identities and shapes are added."""
    full = {
        **card,
        "i": value.i,
        "j": value.j,
        "feature_dim": value.features.dim,
        "reward_grid": list(value.stitch.grid),
        "upsample": value.stitch.upsample,
        "prompted": value.features.prompted,
        "reward_identity": reward_identity(value.reward),
        "backbone_identity": backbone_identity(value.features.backbone, value.i) if value.i else None,
    }

    def write(tmp: Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in value.state_dict().items()}, str(tmp / WEIGHTS))
        (tmp / CARD).write_text(json.dumps(full, indent=2))

    write_folder_atomically(folder, write)


def load_stitched(folder: str | Path, backbone: FlowModel, reward: RewardModel, *, setting: str = "value.path") -> StitchedValue:
    """The value saved by `save_stitched`, checked against the backbone and reward it is loaded with.
    setting: the config key that named `folder`, for the errors."""
    folder = Path(folder)
    if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{setting}: no stitched value in {str(folder)!r} (need {CARD} and {WEIGHTS}); build one with python launch/stitch.py"
        )
    card = json.loads((folder / CARD).read_text())
    differences = {"reward": check_identity(card.get("reward_identity"), reward_identity(reward), what="reward model",
                                            folder=folder, name=card.get("reward", "?"))}
    i, j = card["i"], card["j"]
    if i == 0:
        features = LatentFeatures(backbone.latent_channels)
    else:
        if i > backbone.num_blocks:
            raise ValueError(f"the value in {str(folder)!r} stitches after block {i}, but this backbone has "
                             f"{backbone.num_blocks}; load it with the backbone it was built for ({card.get('backbone', '?')})")
        differences["backbone"] = check_identity(card.get("backbone_identity"), backbone_identity(backbone, i),
                                                 what="backbone", folder=folder, name=card.get("backbone", "?"))
        features = BackboneFeatures(backbone, i, prompted=card.get("prompted", False))
    stitch = StitchLayer(card["feature_dim"], reward.tower.width, tuple(card["reward_grid"]),
                         num_prefix=reward.tower.num_prefix_tokens, upsample=card.get("upsample", 1))
    value = StitchedValue(features, reward, j=j, stitch=stitch)
    load_into(value, load_weights_file(folder / WEIGHTS, what=setting), what=setting, path=folder / WEIGHTS,
              fix="rebuild the value with python launch/stitch.py for this backbone and reward")
    value.probe_differences = differences  # how far this machine computes from the build's, within tolerance
    return value.eval()
