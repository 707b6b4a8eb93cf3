"""Train a latent reward model (DiNa-LRM) from preference pairs, export it, report its accuracy.

    python launch/latent_reward.py                                   # the tiny world, CPU (about 9 minutes)
    python launch/latent_reward.py train.likelihood=bt               # the release's ablations: bt, bt_margin,
                                                                     #   thurstone_constant
    python launch/latent_reward.py model=sd35_medium model.path=... pairs.path=pairs.safetensors latent_reward.blocks=12 \\
        latent_reward.image_taps=[4,8,12] latent_reward.text_taps=[4,8,12] latent_reward.lora_rank=64 latent_reward.lora_alpha=128

Writes <run_dir>/{config.yaml, pairs.safetensors, eval_pairs.safetensors, metrics.jsonl, latent_reward/,
summary.json}; use the export as a value with `rollout.value.kind=latent_reward rollout.value.path=<run_dir>/latent_reward`
(or `value@rollout.value=tiny_latent_reward`, the committed one). The last line printed is the summary as one
JSON object: `pairwise_acc_clean` (held-out pairs, clean), `pref_pairwise_acc_clean` (the pixel reward on the
same pairs, decoded), `pairwise_acc_by_t` (the latent reward, the `compare` value and the Tweedie value at
each of `eval_ts`), the same on held-out generated pairs, and `train_seconds`.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from launch.config_schema import LatentRewardJobConfig, PairSourceConfig, register_schemas  # noqa: E402
from launch.models import model_and_reward  # noqa: E402
from launch.run_dir import start_run_dir  # noqa: E402
from stitching.latent_reward import pairwise_accuracy, train_latent_reward  # noqa: E402
from value.baselines import TweedieValue  # noqa: E402
from value.latent_reward import LatentRewardModel  # noqa: E402
from value.latent_reward_checkpoint import load_latent_reward, save_latent_reward  # noqa: E402
from value.preference_pairs import PreferencePairs  # noqa: E402
from value.value_config import build_value  # noqa: E402

register_schemas()


def tiny_world_pairs(cfg: PairSourceConfig, backbone, reward, seed: int) -> tuple[PreferencePairs, dict[str, PreferencePairs]]:
    """Training pairs (hard negatives on the training digits and generated pairs for training captions) and
    the held-out sets (hard negatives on the test digits, generated pairs for the evaluation prompts)."""
    from world.preference_pairs import generated_pairs, hard_negative_pairs
    from world.prompts import all_eval_prompts
    from world.scene_images import training_captions

    def generated(prompts: list[str], seed_: int) -> PreferencePairs:
        return generated_pairs(backbone, reward, prompts, samples_per_prompt=cfg.samples_per_prompt, sampler=cfg.sampler,
                               margin=cfg.margin, seed=seed_)

    train = [hard_negative_pairs(backbone, cfg.hard_negatives, split="train", seed=seed)]
    if cfg.generated_prompts:
        train.append(generated(list(dict.fromkeys(training_captions(cfg.generated_prompts, seed))), seed))
    held_out = {"hard_negative": hard_negative_pairs(backbone, cfg.eval_pairs, split="test", seed=seed + 1),
                "generated": generated(all_eval_prompts(8), seed + 1)}
    return PreferencePairs.concat(train), held_out


def file_pairs(cfg: PairSourceConfig, seed: int) -> tuple[PreferencePairs, dict[str, PreferencePairs]]:
    pairs = PreferencePairs.load(cfg.path, setting="pairs.path")
    if cfg.eval_path:
        return pairs, {"held_out": PreferencePairs.load(cfg.eval_path, setting="pairs.eval_path")}
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))
    n_eval = max(1, int(cfg.eval_fraction * len(pairs)))
    return pairs.select(order[n_eval:]), {"held_out": pairs.select(order[:n_eval])}


def family_accuracy(readers: dict, backbone, reward, pairs: PreferencePairs, ts: list[float], seed: int) -> dict:
    """The tiny world's held-out hard negatives split by caption family: {family: {"pixel_reward_clean": accuracy,
    "<t>": {scorer: accuracy}}}."""
    from world.prompts import parse_prompt

    families = [parse_prompt(p).family for p in pairs.prompts]
    out = {}
    for family in dict.fromkeys(families):
        part = pairs.select([k for k, f in enumerate(families) if f == family])
        out[family] = {"pairs": len(part), "pixel_reward_clean": pixel_accuracy(backbone, reward, part),
                       **{f"{t:g}": {k: pairwise_accuracy(v, part, t, seed=seed) for k, v in readers.items()} for t in ts}}
    return out


@torch.no_grad()
def pixel_accuracy(backbone, reward, pairs: PreferencePairs, batch_size: int = 256) -> float:
    """The pixel reward on the decoded clean pairs: how often it prefers the chosen image."""
    right, device = 0, backbone.transformer.device
    for _, part in pairs.batches(batch_size):
        s_w = reward(backbone.decode(part.chosen.to(device)), part.prompts)
        s_l = reward(backbone.decode(part.rejected.to(device)), part.prompts)
        right += int((s_w > s_l).sum())
    return right / len(pairs)


@hydra.main(config_path="../configs", config_name="latent_reward", version_base=None)
def main(raw: DictConfig) -> None:
    cfg: LatentRewardJobConfig = OmegaConf.to_object(raw)
    run_dir = start_run_dir(cfg.run_dir, raw)
    backbone, reward, _ = model_and_reward(cfg)
    backbone.eval().requires_grad_(False)
    if cfg.pairs.path:
        train, held_out = file_pairs(cfg.pairs, cfg.seed)
    else:
        train, held_out = tiny_world_pairs(cfg.pairs, backbone, reward, cfg.seed)
    train.save(run_dir / "pairs.safetensors")
    PreferencePairs.concat(list(held_out.values())).save(run_dir / "eval_pairs.safetensors")

    model = LatentRewardModel(backbone, cfg.latent_reward)
    with open(run_dir / "metrics.jsonl", "w") as metrics:
        def log(step: int, row: dict) -> None:
            metrics.write(json.dumps({"step": step, **row}) + "\n")
            metrics.flush()
            print(f"step {step}: loss {row['loss']:.4f}, batch accuracy {row['train_acc']:.3f}", flush=True)

        trained = train_latent_reward(model, train, cfg.train, seed=cfg.seed, log=log)

    export = run_dir / "latent_reward"
    card = {"backbone": OmegaConf.to_container(raw.model), "pairs": {"train": len(train), **{k: len(v) for k, v in held_out.items()}},
            "likelihood": cfg.train.likelihood}
    save_latent_reward(model, export, card)
    model = load_latent_reward(export, backbone, setting="the export")  # what a user loads, checked on the way

    readers = {"latent_reward": model, "compare": build_value(cfg.compare, backbone, reward, key="compare"),
               "tweedie": TweedieValue(backbone, reward)}
    report = {}
    for name, pairs in held_out.items():
        by_t = {f"{t:g}": {k: pairwise_accuracy(v, pairs, t, seed=cfg.seed + 2) for k, v in readers.items()}
                for t in [0.0, *cfg.eval_ts]}
        report[name] = {"pairs": len(pairs), "pixel_reward_clean": pixel_accuracy(backbone, reward, pairs), "by_t": by_t}
    if not cfg.pairs.path:
        report["hard_negative"]["by_family"] = family_accuracy(readers, backbone, reward, held_out["hard_negative"],
                                                                 [0.0, 0.5, 0.9], cfg.seed + 2)
    first = next(iter(held_out))
    summary = {
        "pairwise_acc_clean": report[first]["by_t"]["0"]["latent_reward"],
        "pref_pairwise_acc_clean": report[first]["pixel_reward_clean"],
        "pairwise_acc_by_t": {t: row["latent_reward"] for t, row in report[first]["by_t"].items()},
        "held_out": report,
        **trained,
        "train_pairs": len(train),
        "export": str(export),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
