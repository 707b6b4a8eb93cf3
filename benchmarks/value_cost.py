"""Cost of one value evaluation: StitchedValue vs TweedieValue, with and without the gradient w.r.t. z_t
(what value-guided sampling and DRaFT pay per step). Prints time per call and peak memory of each, and
the stitched/Tweedie ratios, all from this one run.

    python benchmarks/value_cost.py                                # the tiny world (built), CPU
    python benchmarks/value_cost.py --value runs/stitch/<run>/value --batch 16 --repeats 20
    python benchmarks/value_cost.py --reward preference --value artifacts/values/tiny_pref \
        --latent-reward artifacts/values/tiny_latent_reward     # adds the latent reward's rows and ratios

Memory: on a GPU, torch.cuda's peak allocation during the calls; on CPU, the bytes of the tensors
autograd saves for the backward pass (summed by a saved-tensors hook), which is what the gradient path
holds; without the gradient that is 0, so on CPU the memory ratio is printed for the gradient only.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from diffusion.model_config import ModelConfig, build_flow_model  # noqa: E402
from launch.config_schema import world_dir  # noqa: E402
from value.baselines import TweedieValue  # noqa: E402
from value.reward_config import RewardConfig, build_reward_model  # noqa: E402
from value.value_config import ValueConfig, build_value  # noqa: E402


def saved_tensor_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for the backward pass while `fn` runs (0 without grad)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def measure(value, z, t, prompts, *, grad: bool, repeats: int) -> dict:
    def call():
        if grad:
            x = z.clone().requires_grad_(True)
            torch.autograd.grad(value(x, t, prompts).sum(), x)
        else:
            with torch.no_grad():
                value(z, t, prompts)

    call()  # warm-up (caches, text embeddings)
    if z.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    if z.is_cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeats
    memory = torch.cuda.max_memory_allocated() if z.is_cuda else saved_tensor_bytes(call)
    return {"seconds": seconds, "memory_bytes": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--value", default="", help="a stitched value folder (default: build one on the tiny world)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--t", type=float, default=0.6)
    parser.add_argument("--latent-reward", default="", help="a latent reward folder to time beside them (default: none)")
    parser.add_argument("--reward", default="clip", help="the tiny world reward the value was built for: clip or preference")
    args = parser.parse_args()
    torch.manual_seed(0)
    root = world_dir()
    # Frozen, as every job that evaluates a value freezes them: trainable parameters would make autograd
    # save the inputs of their layers for weight gradients no guidance step reads.
    backbone = build_flow_model(ModelConfig(family="sd3", path=str(root / "generator"), max_sequence_length=1))
    backbone.eval().requires_grad_(False)
    reward = build_reward_model(RewardConfig(kind="open_clip", path=str(root / args.reward))).requires_grad_(False)
    if args.value:
        stitched = build_value(ValueConfig(path=args.value), backbone, reward, key="--value")
    else:
        from stitching.images import ImageSourceConfig
        from stitching.pipeline import new_value
        from stitching.search import backbone_taps, search_stitch_point
        from value.stitched import BackboneFeatures
        from world.scene_images import scene_source

        probe = [scene_source(ImageSourceConfig())(-1, 64).images]
        fit = search_stitch_point(*backbone_taps(backbone), reward, probe, seed=0)
        stitched = new_value(BackboneFeatures(backbone, fit.best.i), reward, fit, 8, 0)  # cost does not need training
    stitched.requires_grad_(False)
    tweedie = TweedieValue(backbone, reward)
    latent_reward = None
    if args.latent_reward:
        latent_reward = build_value(ValueConfig(kind="latent_reward", path=args.latent_reward), backbone, reward,
                                    key="--latent-reward").requires_grad_(False)
    z = torch.randn(args.batch, *backbone.latent_shape(32, 32), generator=torch.Generator().manual_seed(0))
    t = torch.full((args.batch,), args.t)
    prompts = ["a red seven and a blue two"] * args.batch
    rows = {}
    for grad in (False, True):
        tag = "grad" if grad else "no_grad"
        rows[f"stitched_{tag}"] = measure(stitched, z, t, prompts, grad=grad, repeats=args.repeats)
        rows[f"tweedie_{tag}"] = measure(tweedie, z, t, prompts, grad=grad, repeats=args.repeats)
        rows[f"time_ratio_{tag}"] = rows[f"stitched_{tag}"]["seconds"] / rows[f"tweedie_{tag}"]["seconds"]
        if grad or z.is_cuda:
            rows[f"memory_ratio_{tag}"] = rows[f"stitched_{tag}"]["memory_bytes"] / rows[f"tweedie_{tag}"]["memory_bytes"]
        if latent_reward is not None:
            rows[f"latent_reward_{tag}"] = measure(latent_reward, z, t, prompts, grad=grad, repeats=args.repeats)
            rows[f"latent_reward_time_ratio_{tag}"] = rows[f"latent_reward_{tag}"]["seconds"] / rows[f"tweedie_{tag}"]["seconds"]
    rows.update(stitch_point=[stitched.i, stitched.j], batch=args.batch, device=str(z.device), torch=torch.__version__)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
