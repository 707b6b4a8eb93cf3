"""Step costs of the real architectures, measured: SD3.5-M's transformer and VAE, CLIP ViT-L/14-336 and
HPSv2's ViT-H/14 towers and the stitched values at the paper's (4, 1), all with random weights (step
costs do not depend on the weights), through this project's own adapters and samplers.

    python benchmarks/real_scale.py                          # CPU, fp32, 128 and 256 px (~18 min, 22 GB)
    python benchmarks/real_scale.py --device cuda            # bf16, 512 and 1024 px

Each component is timed per sample (batch 1; CFG runs both branches in one batch of 2), `--repeats`
times after a warm-up, median reported. Each method's step is composed from the components
(`*_cost` below, the protocol of the paper's runs); one guided DPS step of each kind is also run end to
end through `rollout.guidance.dps_sample` and compared with its composition. Resolution-dependent
components are scaled from the largest measured resolution to 512 and 1024 px by their forward FLOPs,
counted on the meta device; the reward towers read a fixed 224 / 336 px and do not scale. T5-XXL and the
CLIP text encoders are replaced by prompt embeddings of their output shapes (333 x 4096, pooled 2048):
a prompt is encoded once per step, not per sampler step. The last line is one JSON object.

Memory (the DPS pair): on CUDA, torch.cuda's peak allocation during the guided step; on CPU, the bytes of
the parameters the sampler holds plus those autograd saves for the step's backward pass.
"""

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import open_clip  # noqa: E402
import torch  # noqa: E402
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline  # noqa: E402

from diffusion.conditioning import Conditioning  # noqa: E402
from diffusion.lora import LoraConfig, add_lora  # noqa: E402
from diffusion.sampling import SamplerConfig, guided_velocity, seeded_generators  # noqa: E402
from diffusion.sd3 import SD3FlowModel  # noqa: E402
from learner.nft_learner import times_per_row  # noqa: E402
from rollout.guidance import GuidanceConfig, dps_sample  # noqa: E402
from rollout.particles import FKConfig  # noqa: E402
from value.baselines import TweedieValue  # noqa: E402
from value.clip_score import CLIPScore  # noqa: E402
from value.image_transform import ImageTransform  # noqa: E402
from value.stitched import BackboneFeatures, StitchedValue, StitchLayer  # noqa: E402
from world.cost import SD35_MEDIUM_TRANSFORMER, SD35_TEXT_TOKENS, SD35_VAE, count_flops, transformer_flops, vae_decode_flops  # noqa: E402

PROMPT = "a photo of an astronaut riding a horse"
TOWERS = {"clip": ("ViT-L-14-336-quickgelu", "shortest"), "hps": ("ViT-H-14", "longest")}
STITCH = (4, 1)  # the paper's (i*, j*) for CLIP ViT-L/14 x SD3.5-M; used for HPSv2 too (no other is published)


# ---- method steps, composed from per-sample component costs (seconds, or FLOPs) ----

def nft_sample_parts(c: dict, *, num_steps: int, stop: int | None, fraction: float) -> dict:
    """One image's share of a DiffusionNFT step by phase: rollout passes, scoring, and the learner's passes
    at max(1, int(fraction n)) of the n times above the stop. c: "forward" (a sampler pass, no CFG: NFT
    samples without it), "full_scoring" (decode and reward towers), "value_scoring" (the values),
    "learner_time" (the policy's forward and backward, the old policy's and the reference's forwards),
    optionally "optimizer" (the image's share of an optimizer step, the same in both arms)."""
    end = num_steps if stop is None else stop
    return {"rollout": end * c["forward"], "scoring": c["full_scoring"] if stop is None else c["value_scoring"],
            "learner": times_per_row(end, fraction) * c["learner_time"], "optimizer": c.get("optimizer", 0.0)}


def nft_sample_cost(c: dict, *, num_steps: int, stop: int | None, fraction: float) -> float:
    return sum(nft_sample_parts(c, num_steps=num_steps, stop=stop, fraction=fraction).values())


def nft_step_ratio(c: dict, *, num_steps: int = 25, window: tuple[int, int] = (12, 17), fraction: float = 0.99) -> float:
    """The value arm's mean per-image cost (stops uniform over `window`) over the full arm's."""
    stops = range(window[0], window[1] + 1)
    value = sum(nft_sample_cost(c, num_steps=num_steps, stop=k, fraction=fraction) for k in stops) / len(stops)
    return value / nft_sample_cost(c, num_steps=num_steps, stop=None, fraction=fraction)


def draft_sample_cost(c: dict, *, num_steps: int, stop: int | None, grad_steps: int) -> float:
    """One image of a DRaFT step: no-grad passes up to the K differentiated steps, each of those a
    policy forward and backward plus the reference's forward (the DRaFT+ regulariser); then the reward's
    gradient, through decode and towers (stop None: DRaFT-K) or through the values at the stop."""
    end = num_steps if stop is None else stop
    score = c["full_scoring_grad"] if stop is None else c["value_scoring_grad"]
    return (end - grad_steps) * c["forward"] + grad_steps * (c["learner_lora"] + c["forward"]) + score + c["optimizer"]


def draft_step_ratio(c: dict, *, num_steps: int = 10, window: tuple[int, int] = (3, 7), grad_steps: int = 1) -> float:
    stops = range(window[0], window[1] + 1)
    value = sum(draft_sample_cost(c, num_steps=num_steps, stop=k, grad_steps=grad_steps) for k in stops) / len(stops)
    return value / draft_sample_cost(c, num_steps=num_steps, stop=None, grad_steps=grad_steps)


def dps_step_parts(c: dict, *, value: bool) -> dict:
    """One guided sampler step under CFG: value-DPS's gradient runs through the value alone; Tweedie-DPS's
    through both CFG branches of the denoiser, the decoder and the reward tower."""
    if value:
        return {"denoiser": c["forward_cfg"], "value or decoder + reward": c["value_hps_grad"]}
    return {"denoiser": c["denoiser_grad_cfg"], "value or decoder + reward": c["decode_grad"] + c["hps_grad"]}


def dps_step_cost(c: dict, *, value: bool) -> float:
    return sum(dps_step_parts(c, value=value).values())


def fk_sample_cost(c: dict, fk: FKConfig, *, num_steps: int, value: bool) -> float:
    """One prompt's N particles through the sampler (CFG), their potentials at the resampling steps (the
    stitched value, or Tweedie's decode and reward with the step's velocity reused), M value-ranked
    proposals per particle at the proposing steps, and the final decode and reward that picks the best."""
    n = fk.particles
    potential = c["value_hps"] if value else c["decode"] + c["hps"]
    proposals = len(fk.proposing(num_steps)) * n * fk.proposals * c["value_hps"]
    return n * (num_steps * c["forward_cfg"] + len(fk.resampling(num_steps)) * potential + c["decode"] + c["hps"]) + proposals


# The paper's FK settings (App. D.2): 40 steps, N = 4, M = 2 at the first 40% of the steps, resampling
# every 4 steps in 8..32.
PAPER_FK = FKConfig(particles=4, proposals=2, proposal_steps="0-15", resample_steps="8-32", resample_every=4)


# Images per optimizer step on one GPU in the paper's runs (16 GPUs): NFT 48 groups x 24 images, DRaFT an
# effective batch of 2048.
NFT_IMAGES_PER_UPDATE, DRAFT_IMAGES_PER_UPDATE = 48 * 24 // 16, 2048 // 16


def nft_costs(c: dict) -> dict:
    """What `nft_sample_parts` reads, from the components: LoRA (the paper's recipe), two reward towers."""
    return {"forward": c["forward"], "full_scoring": c["decode"] + c["clip"] + c["hps"],
            "value_scoring": c["value_clip"] + c["value_hps"], "learner_time": c["learner_lora"] + 2 * c["forward"],
            "optimizer": c["optimizer_lora"] / NFT_IMAGES_PER_UPDATE}


def splits(c: dict) -> dict:
    """Seconds per phase of the DPS step of each kind and of an NFT image in each arm (the value arm's
    averaged over its stops), to say where a ratio comes from."""
    stops = range(12, 18)
    value = [nft_sample_parts(nft_costs(c), num_steps=25, stop=k, fraction=0.99) for k in stops]
    return {"dps": {"value": dps_step_parts(c, value=True), "tweedie": dps_step_parts(c, value=False)},
            "nft": {"value": {k: sum(p[k] for p in value) / len(value) for k in value[0]},
                    "full": nft_sample_parts(nft_costs(c), num_steps=25, stop=None, fraction=0.99)}}


def pair_ratios(c: dict) -> dict:
    """Method over baseline, per step (per sample for FK), from the component costs c; NFT and DRaFT with
    LoRA (the paper's recipes), NFT also with a full finetune."""
    nft = nft_costs(c)
    nft_full = {**nft, "learner_time": c["learner_full"] + 2 * c["forward"], "optimizer": c["optimizer_full"] / NFT_IMAGES_PER_UPDATE}
    draft = {"forward": c["forward"], "learner_lora": c["learner_lora"],
             "full_scoring_grad": c["decode_grad"] + c["clip_grad"] + c["hps_grad"],
             "value_scoring_grad": c["value_clip_grad"] + c["value_hps_grad"],
             "optimizer": c["optimizer_lora"] / DRAFT_IMAGES_PER_UPDATE}
    plain_fk = FKConfig(particles=PAPER_FK.particles, resample_steps=PAPER_FK.resample_steps, resample_every=4)
    return {
        "dps": dps_step_cost(c, value=True) / dps_step_cost(c, value=False),
        "nft": nft_step_ratio(nft),
        "nft_full_finetune": nft_step_ratio(nft_full),
        "draft": draft_step_ratio(draft),
        "fk": fk_sample_cost(c, PAPER_FK, num_steps=40, value=True) / fk_sample_cost(c, plain_fk, num_steps=40, value=False),
    }


# ---- the real components, random weights ----

class EmbeddedPromptsSD3(SD3FlowModel):
    """SD3.5-M with its three text encoders replaced by one fixed prompt embedding of their output shapes
    (CLIP-L + CLIP-G hidden states and T5-XXL tokens: 333 x 4096; pooled 2048), the same for every
    prompt: what it holds does not change what a step costs."""

    def encode_prompt(self, prompts: list[str]) -> Conditioning:
        g = torch.Generator().manual_seed(0)
        embeds = torch.randn(1, SD35_TEXT_TOKENS, 4096, generator=g).expand(len(prompts), -1, -1)
        pooled = torch.randn(1, 2048, generator=g).expand(len(prompts), -1)
        return Conditioning(embeds.to(self.transformer.device, self.transformer.dtype),
                            pooled.to(self.transformer.device, self.transformer.dtype))


def build_backbone(device: str, dtype: torch.dtype) -> EmbeddedPromptsSD3:
    with torch.device(device):
        transformer, vae = SD3Transformer2DModel(**SD35_MEDIUM_TRANSFORMER), AutoencoderKL(**SD35_VAE)
    if dtype != torch.float32:
        transformer, vae = transformer.to(dtype), vae.to(dtype)
    pipeline = StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None, text_encoder_3=None, tokenizer_3=None,
    )
    return EmbeddedPromptsSD3(pipeline).eval().requires_grad_(False)


def build_reward(name: str, device: str, dtype: torch.dtype) -> CLIPScore:
    arch, resize_mode = TOWERS[name]
    model = open_clip.create_model(arch, pretrained=None, device=device).to(dtype)
    size = model.visual.image_size
    transform = ImageTransform(size=size[0] if isinstance(size, (tuple, list)) else size, resize_mode=resize_mode)
    if device == "meta":  # only counted through `value.embed`: the text tower is never called
        return CLIPScore.from_open_clip_model(model, None, transform)
    return CLIPScore.from_open_clip_model(model, open_clip.get_tokenizer(arch), transform)


def build_value(backbone: EmbeddedPromptsSD3, reward: CLIPScore) -> StitchedValue:
    """A stitched value at STITCH with an untrained stitch (the bilinear path, as at 512 and 1024 px)."""
    i, j = STITCH
    tower = reward.tower
    stitch = StitchLayer(backbone.feature_dim, tower.width, tower.grid, num_prefix=tower.num_prefix_tokens)
    value = StitchedValue(BackboneFeatures(backbone, i), reward, j=j, stitch=stitch)
    return value.to(backbone.transformer.device, backbone.transformer.dtype).requires_grad_(False)


def parameter_bytes(*modules: torch.nn.Module) -> int:
    seen = {id(p): p for m in modules for p in m.parameters()}
    return sum(p.numel() * p.element_size() for p in seen.values())


def saved_activation_bytes(fn, modules: list[torch.nn.Module]) -> int:
    """Bytes autograd saves for the backward pass while `fn` runs, each storage once, the modules'
    parameters (saved by reference, already resident) left out."""
    params = {p.untyped_storage().data_ptr() for m in modules for p in m.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = max(seen.get(ptr, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


@dataclass
class Timing:
    """seconds: the median of the timed calls. saved_bytes: what autograd saved during the warm-up (the
    held modules' parameters left out). cuda_peak_bytes: torch.cuda's peak allocation during it (0 on CPU)."""

    seconds: float
    saved_bytes: int
    cuda_peak_bytes: int


def timed(fn, *, device: str, repeats: int, label: str, held: tuple[torch.nn.Module, ...] = ()) -> Timing:
    """`repeats` calls after one warm-up, which also counts the memory; progress on stderr."""
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    saved = saved_activation_bytes(fn, list(held))
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    runs = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - start)
    print(f"{label}: {statistics.median(runs):.3f} s", file=sys.stderr, flush=True)
    return Timing(statistics.median(runs), saved, peak)


def input_gradient(fn, x: torch.Tensor) -> torch.Tensor:
    """d sum(fn(x)) / dx: a backward pass that reaches x, whatever requires grad on the way."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(fn(x).float().sum(), x)[0]


def learner_pass(backbone: EmbeddedPromptsSD3, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> None:
    """One learner timestep: the policy's forward and a backward into its trainable weights."""
    with torch.enable_grad():
        backbone.velocity(z, t, cond).float().square().mean().backward()
    for p in backbone.transformer.parameters():
        p.grad = None


def optimizer_seconds(params: list[torch.nn.Parameter], *, device: str, repeats: int, label: str) -> float:
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(params, lr=1e-6)
    seconds = timed(optimizer.step, device=device, repeats=repeats, label=label).seconds
    for p in params:
        p.grad = None
    return seconds


def count(params: list[torch.nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


# ---- what is timed ----

CFG_SCALE = 4.5  # the paper's DPS and FK runs
SCALES_WITH = {  # how a component's cost grows with the resolution: by the forward FLOPs of ...
    "forward": "transformer", "forward_cfg": "transformer", "denoiser_grad_cfg": "transformer",
    "learner_lora": "transformer", "learner_full": "transformer", "decode": "decode", "decode_grad": "decode",
    "value_clip": "value_clip", "value_clip_grad": "value_clip", "value_hps": "value_hps", "value_hps_grad": "value_hps",
}  # the reward towers (fixed input size) and the optimizer steps do not grow


def inputs(backbone: EmbeddedPromptsSD3, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded latent (1, 16, res / 8, res / 8) at t = 0.6 and its time."""
    dtype, device = backbone.transformer.dtype, backbone.transformer.device
    z = torch.randn(1, *backbone.latent_shape(res, res), generator=torch.Generator().manual_seed(0))
    return z.to(device, dtype), torch.full((1,), 0.6, device=device, dtype=dtype)


def time_denoiser_and_decoder(backbone, res: int, *, device: str, repeats: int) -> dict[str, Timing]:
    z, t = inputs(backbone, res)
    cond, null = backbone.conditions([PROMPT], CFG_SCALE)

    def cfg(x):
        return guided_velocity(backbone, x, t, cond, null, CFG_SCALE)

    calls = {
        "forward": lambda: backbone.velocity(z, t, cond),
        "forward_cfg": lambda: cfg(z),
        "denoiser_grad_cfg": lambda: input_gradient(cfg, z),
        "decode": lambda: backbone.decode(z),
        "decode_grad": lambda: input_gradient(backbone.decode, z),
    }
    with torch.no_grad():
        return {k: timed(fn, device=device, repeats=repeats, label=f"{k} {res} px", held=(backbone,)) for k, fn in calls.items()}


def time_reward(name: str, reward: CLIPScore, *, device: str, repeats: int) -> dict[str, Timing]:
    """The tower with and without the gradient to the pixels (of a 256 px image: it reads a fixed size)."""
    images = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)).to(device, reward.dtype)
    calls = {name: lambda: reward(images, [PROMPT]), f"{name}_grad": lambda: input_gradient(lambda x: reward(x, [PROMPT]), images)}
    with torch.no_grad():
        return {k: timed(fn, device=device, repeats=repeats, label=k, held=(reward,)) for k, fn in calls.items()}


def time_value(name: str, value: StitchedValue, backbone, res: int, *, device: str, repeats: int) -> dict[str, Timing]:
    z, t = inputs(backbone, res)
    calls = {f"value_{name}": lambda: value(z, t, [PROMPT]),
             f"value_{name}_grad": lambda: input_gradient(lambda x: value(x, t, [PROMPT]), z)}
    with torch.no_grad():
        return {k: timed(fn, device=device, repeats=repeats, label=f"{k} {res} px", held=(backbone, value))
                for k, fn in calls.items()}


def dps_check(backbone, reward: CLIPScore, value: StitchedValue, res: int, *, device: str, repeats: int) -> dict:
    """One guided step of each DPS kind end to end through `dps_sample` (CFG, from t = 0.6): its seconds,
    and its peak memory (CUDA: allocated; CPU: parameters held plus the bytes saved for the backward)."""
    z, _ = inputs(backbone, res)
    cond, null = backbone.conditions([PROMPT], CFG_SCALE)
    sampler, guidance = SamplerConfig(num_steps=1, cfg_scale=CFG_SCALE), GuidanceConfig(scale=1.0)
    times = torch.tensor([0.6, 0.55])
    tweedie = TweedieValue(backbone, reward, cfg_scale=CFG_SCALE)
    out = {}
    for kind, v, held in (("value", value, (backbone, reward, value)), ("tweedie", tweedie, (backbone, reward))):
        def step(v=v):
            dps_sample(backbone, v, z, cond, [PROMPT], times=times, generators=seeded_generators([0]), sampler=sampler,
                       guidance=guidance, null=null)

        timing = timed(step, device=device, repeats=repeats, label=f"{kind}-DPS step {res} px", held=held)
        peak = timing.cuda_peak_bytes or parameter_bytes(*held) + timing.saved_bytes
        out[kind] = {"seconds": timing.seconds, "peak_bytes": peak}
    return out


def time_learners(backbone, resolutions: list[int], *, device: str, repeats: int) -> dict:
    """The learner timestep, full finetune then LoRA r32 on the attention projections (the paper's recipes),
    and an AdamW step for each. The full model's optimizer state (2 x 9 GB in fp32) does not fit beside
    the weights and gradients here: its step is timed on the first block and scaled by parameter count."""
    out: dict[int, dict] = {res: {} for res in resolutions}
    transformer = backbone.transformer
    transformer.requires_grad_(True)
    for res in resolutions:
        z, t = inputs(backbone, res)
        cond = backbone.encode_prompt([PROMPT])
        out[res]["learner_full"] = timed(lambda: learner_pass(backbone, z, t, cond), device=device, repeats=repeats,
                                         label=f"learner_full {res} px").seconds
    block = list(transformer.transformer_blocks[0].parameters())
    scale = count(list(transformer.parameters())) / count(block)
    full = optimizer_seconds(block, device=device, repeats=repeats, label="AdamW, block 1") * scale
    add_lora(transformer, LoraConfig())
    lora_params = [p for p in transformer.parameters() if p.requires_grad]
    lora = optimizer_seconds(lora_params, device=device, repeats=repeats, label="AdamW, LoRA")
    for res in resolutions:
        z, t = inputs(backbone, res)
        cond = backbone.encode_prompt([PROMPT])
        out[res]["learner_lora"] = timed(lambda: learner_pass(backbone, z, t, cond), device=device, repeats=repeats,
                                         label=f"learner_lora {res} px").seconds
        out[res].update(optimizer_full=full, optimizer_lora=lora)
    return out


# ---- scaling and the run ----

@torch.no_grad()
def forward_flops(resolutions: list[int]) -> dict[int, dict]:
    """Forward FLOPs per resolution of the transformer, the decoder and each value, on the meta device."""
    backbone = build_backbone("meta", torch.float32)
    values = {name: build_value(backbone, build_reward(name, "meta", torch.float32)) for name in TOWERS}
    out = {}
    for res in resolutions:
        hw = res // backbone.vae_scale_factor
        z, t = torch.zeros(1, 16, hw, hw, device="meta"), torch.full((1,), 0.6, device="meta")
        out[res] = {"transformer": transformer_flops(backbone.transformer, hw, SD35_TEXT_TOKENS),
                    "decode": vae_decode_flops(backbone.vae, hw),
                    **{f"value_{name}": count_flops(lambda v=v: v.embed(z, t, [PROMPT])) for name, v in values.items()}}
    return out


def scaled(measured: dict, flops: dict[int, dict], base: int, res: int) -> dict:
    """The components at `res`, from those measured at `base`, each grown by its forward FLOPs."""
    return {k: v * (flops[res][SCALES_WITH[k]] / flops[base][SCALES_WITH[k]] if k in SCALES_WITH else 1.0)
            for k, v in measured.items()}


def release(*objects) -> None:
    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(resolutions: list[int], *, device: str, dtype: torch.dtype, repeats: int) -> dict:
    """Every component at every resolution (the towers once: they read a fixed size), the DPS step's
    memory at each, and the end-to-end check at the smallest."""
    timings: dict[int, dict[str, Timing]] = {res: {} for res in resolutions}
    backbone = build_backbone(device, dtype)
    for res in resolutions:
        timings[res].update(time_denoiser_and_decoder(backbone, res, device=device, repeats=repeats))
    for name in TOWERS:
        reward = build_reward(name, device, dtype)
        value = build_value(backbone, reward)
        tower = time_reward(name, reward, device=device, repeats=repeats)
        for res in resolutions:
            timings[res].update(tower, **time_value(name, value, backbone, res, device=device, repeats=repeats))
        if name == "hps":
            held = {"value": parameter_bytes(backbone, reward, value), "tweedie": parameter_bytes(backbone, reward)}
            check = dps_check(backbone, reward, value, resolutions[0], device=device, repeats=repeats)
        release(reward, value)
        reward = value = None
    components = {res: {k: t.seconds for k, t in ts.items()} for res, ts in timings.items()}
    for res, seconds in time_learners(backbone, resolutions, device=device, repeats=repeats).items():
        components[res].update(seconds)
    memory = {res: {"value": held["value"] + t["value_hps_grad"].saved_bytes,
                    "tweedie": held["tweedie"] + sum(t[k].saved_bytes for k in ("denoiser_grad_cfg", "decode_grad", "hps_grad"))}
              for res, t in timings.items()}
    composed = {"value": dps_step_cost(components[resolutions[0]], value=True),
                "tweedie": dps_step_cost(components[resolutions[0]], value=False)}
    check = {kind: {**check[kind], "composed_seconds": composed[kind],
                    "relative_error": composed[kind] / check[kind]["seconds"] - 1} for kind in check}
    return {"components": components, "dps_memory_bytes": memory, "check": {"resolution": resolutions[0], **check}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (fp32) or cuda (bf16)")
    parser.add_argument("--resolutions", type=int, nargs="+", default=None, help="px; default 128 256 on CPU, 512 1024 on CUDA")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per component after a warm-up (median)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    resolutions = sorted(args.resolutions or ([512, 1024] if cuda else [128, 256]))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    result = measure(resolutions, device=args.device, dtype=torch.bfloat16 if cuda else torch.float32, repeats=args.repeats)
    base, predicted = resolutions[-1], [r for r in (512, 1024) if r not in resolutions]
    flops = forward_flops(sorted({base, *predicted}))
    components = {**result["components"], **{r: scaled(result["components"][base], flops, base, r) for r in predicted}}
    out = {"device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
           "dtype": "bfloat16" if cuda else "float32", "torch": torch.__version__, "resolutions": resolutions,
           "predicted_resolutions": predicted, "scaled_from": base, "repeats": args.repeats}
    for res, c in components.items():
        suffix = f"_{res}" if res in predicted else f"_measured_{res}"
        for pair, ratio in pair_ratios(c).items():
            out[f"{pair}_step_ratio{suffix}"] = ratio
    for pair, ratio in pair_ratios(components[base]).items():
        out[f"{pair}_step_ratio"] = ratio  # at the largest measured resolution
    memory = result["dps_memory_bytes"][base]
    out.update(dps_peak_mem_ratio=memory["value"] / memory["tweedie"], dps_memory_bytes=result["dps_memory_bytes"],
               check=result["check"], splits={res: splits(c) for res, c in components.items()}, components=components,
               forward_flops=flops,
               wall_seconds=time.perf_counter() - start)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
