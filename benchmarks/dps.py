"""Value-DPS vs Tweedie-DPS, and the value-guided tilt toward p exp(r / beta): sweep each method's strength
(the DPS scale, the tilt's beta), keep each one's best setting by reward, then time them (alternating,
same prompts and seeds) and measure their peak memory, each in a fresh process. Also predicts the DPS
ratio for the real configs from FLOP counts of meta-device models.

    python benchmarks/dps.py                                   # the tiny world, CPU (~5 min)
    python benchmarks/dps.py --per-family 4 --value-scales 8,16 --tweedie-scales 0.4,0.8

Every run goes through launch/steer.py's config (configs/steer.yaml) and code. Memory on CPU is the
process's peak resident set increase while sampling (launch/peak_memory.py), on a GPU torch.cuda's
peak allocation. The last line is one JSON object.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import open_clip  # noqa: E402
import torch  # noqa: E402
from diffusers import AutoencoderKL, SD3Transformer2DModel  # noqa: E402

from diffusion.device import resolve_device  # noqa: E402
from launch.steer import steer  # noqa: E402
from steer_runs import evaluate, job_config, steerer_for, warm_up  # noqa: E402
from world.cost import SD35_MEDIUM_TRANSFORMER, SD35_TEXT_TOKENS, SD35_VAE, count_flops  # noqa: E402
from world.prompts import all_eval_prompts  # noqa: E402
from world.verifier import load_verifier  # noqa: E402


def seconds_per_sample(settings: dict[str, list[str]], prompts: list[str], seeds: list[int], repeats: int) -> dict[str, float]:
    """Median over `repeats` passes, the methods alternating so that machine noise hits both alike."""
    steerers = {name: steerer_for(o) for name, o in settings.items()}
    for steerer, _ in steerers.values():
        warm_up(steerer, prompts, seeds)
    times: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(repeats):
        for name, (steerer, cfg) in steerers.items():
            out, _ = steer(steerer, prompts, seeds, cfg.batch_size)
            times[name].append(out.seconds / len(prompts))
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(overrides: list[str], prompts: list[str], seeds: list[int]) -> dict:
    """Peak memory of sampling one batch, in a fresh process (see launch/peak_memory.py)."""
    request = json.dumps({"overrides": overrides, "prompts": prompts, "seeds": seeds})
    out = subprocess.run([sys.executable, __file__, "--peak-memory-of", request], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_memory_child(request: str) -> None:
    req = json.loads(request)
    steerer, _ = steerer_for(req["overrides"])
    warm_up(steerer, req["prompts"], req["seeds"])
    _, peak = steer(steerer, req["prompts"], req["seeds"], len(req["prompts"]))
    print(json.dumps({"bytes": peak.bytes, "source": peak.source}))


def _grad_flops(module, x: torch.Tensor, **kwargs) -> int:
    """Forward + backward FLOPs of module(x) w.r.t. its input x only (the weights are frozen)."""
    def run():
        with torch.enable_grad():
            out = module(x.requires_grad_(True), **kwargs)
            (out.sample if hasattr(out, "sample") else out).sum().backward()
    return count_flops(run)


def guided_step_flops(transformer, vae, visual, *, text_tokens: int, stitch_blocks: int, cfg_scale: float) -> dict:
    """Forward + backward FLOPs of one guided step (one sample, CFG's two branches) of each DPS method,
    for an SD3 transformer, its VAE and an open_clip image tower (`visual`), at the transformer's sample size.

    Tweedie-DPS: both branches, the VAE decoder and the reward tower, forward and backward. Value-DPS:
    both branches forward without a graph, then the first `stitch_blocks` blocks, the stitch's 1x1 conv and
    the reward tower, forward and backward. The first-i-blocks pass is a model of the same config with i
    blocks (its output layer, < 1% of it, included); the tower is counted from its pixel input (its patch
    embedding, which the stitch replaces, is < 0.1% of it). Backward passes compute input gradients only.
    """
    tc = {k: v for k, v in transformer.config.items() if not k.startswith("_")}
    with torch.device("meta"):
        head = SD3Transformer2DModel(**{**tc, "num_layers": stitch_blocks, "dual_attention_layers":
                                        tuple(k for k in tc["dual_attention_layers"] if k < stitch_blocks)}).requires_grad_(False)
        stitch = torch.nn.Conv2d(tc["num_attention_heads"] * tc["attention_head_dim"], visual.conv1.out_channels, 1).requires_grad_(False)
    device = next(transformer.parameters()).device
    hw, grid = tc["sample_size"], tc["sample_size"] // tc["patch_size"]
    size = visual.image_size[0] if isinstance(visual.image_size, (tuple, list)) else visual.image_size

    def text(b, dev):
        return dict(encoder_hidden_states=torch.zeros(b, text_tokens, tc["joint_attention_dim"], device=dev),
                    pooled_projections=torch.zeros(b, tc["pooled_projection_dim"], device=dev), timestep=torch.ones(b, device=dev))

    def latent(b, dev):
        return torch.zeros(b, tc["in_channels"], hw, hw, device=dev)

    def tweedie():
        with torch.enable_grad():
            x = latent(1, device).requires_grad_(True)
            u_cond, u_null = transformer(hidden_states=torch.cat([x, x]), **text(2, device)).sample.chunk(2)
            image = vae.decode(x - 0.5 * (u_null + cfg_scale * (u_cond - u_null))).sample
            visual(torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear")).sum().backward()

    with torch.no_grad():
        forward = count_flops(lambda: transformer(hidden_states=latent(2, device), **text(2, device)))
    value = (forward + _grad_flops(head, latent(1, "meta"), **text(1, "meta"))
             + _grad_flops(stitch, torch.zeros(1, stitch.in_channels, grid, grid, device="meta"))
             + _grad_flops(visual, torch.zeros(1, 3, size, size, device=device)))
    flops = {"tweedie_dps_step_flops": count_flops(tweedie), "value_dps_step_flops": value}
    return {**flops, "predicted_speedup": flops["tweedie_dps_step_flops"] / value}


def real_config_flops(stitch_blocks: int = 4, cfg_scale: float = 4.5) -> dict:
    """`guided_step_flops` for SD3.5-M at 1024 px with CLIP ViT-L/14-336 and HPSv2 (ViT-H-14), on
    meta-device models built from the published configs (no weights); i* = 4 is the paper's for CLIP-L."""
    with torch.device("meta"):
        transformer = SD3Transformer2DModel(**SD35_MEDIUM_TRANSFORMER).requires_grad_(False)
        vae = AutoencoderKL(**SD35_VAE).requires_grad_(False)
        towers = {"clip_vitl14_336": open_clip.model.CLIP(**open_clip.get_model_config("ViT-L-14-336-quickgelu")).visual,
                  "hpsv2": open_clip.model.CLIP(**open_clip.get_model_config("ViT-H-14")).visual}
    return {name: guided_step_flops(transformer, vae, tower.requires_grad_(False), text_tokens=SD35_TEXT_TOKENS,
                                    stitch_blocks=stitch_blocks, cfg_scale=cfg_scale) for name, tower in towers.items()}


def this_world_flops(overrides: list[str]) -> dict:
    """`guided_step_flops` on the configured models themselves, cut where the configured value is."""
    steerer, cfg = steerer_for(overrides)
    text_tokens = steerer.conditions([""])[0].prompt_embeds.shape[1]
    return guided_step_flops(steerer.model.transformer, steerer.model.vae, steerer.reward.tower.visual,
                             text_tokens=text_tokens, stitch_blocks=steerer.value.i, cfg_scale=cfg.steer.sampler.cfg_scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=8, help="evaluation prompts per task family")
    parser.add_argument("--samples", type=int, default=2, help="samples per prompt")
    parser.add_argument("--value-scales", default="32,64,128,256,512,1024")
    parser.add_argument("--tweedie-scales", default="6.4,12.8,25.6,51.2,102.4,204.8,409.6")
    parser.add_argument("--tilt-betas", default="0.04,0.02,0.01,0.005", help="the value tilt's temperatures (gamma 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timing passes of each best setting")
    parser.add_argument("--peak-memory-of", default="", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="configs/steer.yaml overrides, e.g. steer.value.path=...")
    args = parser.parse_args()
    if args.peak_memory_of:
        return _peak_memory_child(args.peak_memory_of)
    torch.set_num_threads(2)
    base_cfg = job_config(args.overrides)
    verifier = load_verifier(base_cfg.verifier)
    prompts = [p for p in all_eval_prompts(args.per_family) for _ in range(args.samples)]
    seeds = list(range(len(prompts)))
    rows = {"plain": evaluate([*args.overrides, "steer.method=plain"], prompts, seeds, verifier)}
    print(json.dumps({"plain": rows["plain"]}), flush=True)
    sweeps = {"value_dps": ("dps", "stitched", "guidance.scale", args.value_scales),
              "tweedie_dps": ("dps", "tweedie", "guidance.scale", args.tweedie_scales),
              "value_tilt": ("tilt", "stitched", "tilt.beta", args.tilt_betas)}
    best = {}
    for method, (kind, value, knob, scales) in sweeps.items():
        for scale in [float(s) for s in scales.split(",") if s]:
            overrides = [*args.overrides, f"steer.method={kind}", f"steer.value.kind={value}", f"steer.{knob}={scale}"]
            rows[f"{method}@{scale:g}"] = row = evaluate(overrides, prompts, seeds, verifier)
            print(json.dumps({f"{method}@{scale:g}": row}), flush=True)
            if method not in best or row["reward"] > rows[best[method][0]]["reward"]:
                best[method] = (f"{method}@{scale:g}", overrides)
    timing = seconds_per_sample({m: o for m, (_, o) in best.items()}, prompts, seeds, args.repeats)
    batch = prompts[: base_cfg.batch_size]
    memory = {m: peak_memory(o, batch, seeds[: len(batch)]) for m, (_, o) in best.items()}
    flops = real_config_flops()
    tiny_flops = this_world_flops(best["value_dps"][1])
    v, t = (rows[best[m][0]] for m in ("value_dps", "tweedie_dps"))
    summary = {
        "speedup": timing["tweedie_dps"] / timing["value_dps"],
        "peak_mem_ratio": memory["value_dps"]["bytes"] / memory["tweedie_dps"]["bytes"],
        "reward_value_dps": v["reward"], "reward_tweedie_dps": t["reward"], "reward_base": rows["plain"]["reward"],
        "prompt_acc_value_dps": v["prompt_acc"], "prompt_acc_tweedie_dps": t["prompt_acc"],
        "prompt_acc_base": rows["plain"]["prompt_acc"],
        "best_setting": {m: name for m, (name, _) in best.items()},
        "seconds_per_sample": timing, "peak_memory_bytes": {m: x["bytes"] for m, x in memory.items()},
        "peak_memory_source": memory["value_dps"]["source"],
        "predicted_speedup_sd35m": flops["clip_vitl14_336"]["predicted_speedup"],
        "predicted_speedup_sd35m_hpsv2": flops["hpsv2"]["predicted_speedup"],
        "predicted_speedup_this_world": tiny_flops["predicted_speedup"],
        "flops_per_guided_step": {**flops, "this_world": tiny_flops}, "samples": len(prompts), "device": str(resolve_device(base_cfg.device)),
        "methods": {m: {"reward": rows[name]["reward"], "prompt_acc": rows[name]["prompt_acc"], "seconds": timing[m],
                        "peak_mem": memory[m]["bytes"], "setting": name} for m, (name, _) in best.items()},
        "sweep": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
