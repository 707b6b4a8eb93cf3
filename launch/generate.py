"""Generate images for prompts and score them: the flow model, sampler and reward of the configs.

    python launch/generate.py                                  # the embedded default, CPU
    python launch/generate.py model=sd35_medium model.path=/data/sd3.5-medium reward=hpsv2 \
        reward.path=/data/HPS_v2.1_compressed.pt height=512 width=512 sampler.cfg_scale=4.5

Writes <run_dir>/{config.yaml, samples.png, samples.jsonl, summary.json}; the last line printed is the
summary as one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from diffusion.image_grid import save_grid  # noqa: E402
from launch.config_schema import GenerateJobConfig, register_schemas  # noqa: E402
from launch.models import model_and_reward  # noqa: E402
from launch.run_dir import start_run_dir  # noqa: E402
from rollout.generation import expand_prompts, generate_and_score  # noqa: E402

register_schemas()


@hydra.main(config_path="../configs", config_name="generate", version_base=None)
def main(raw: DictConfig) -> None:
    cfg: GenerateJobConfig = OmegaConf.to_object(raw)
    run_dir = start_run_dir(cfg.run_dir, raw)
    model, reward, device = model_and_reward(cfg)
    prompts, seeds = expand_prompts(cfg.prompt_list(), cfg.samples_per_prompt, cfg.seed)
    out = generate_and_score(
        model, reward, prompts, seeds, sampler=cfg.sampler, height=cfg.height, width=cfg.width, batch_size=cfg.batch_size
    )
    save_grid(out.images, run_dir / "samples.png", columns=cfg.samples_per_prompt, scale=max(1, 128 // cfg.width),
              labels=out.prompts)
    with open(run_dir / "samples.jsonl", "w") as f:
        for prompt, seed, r in zip(out.prompts, out.seeds, out.rewards.tolist(), strict=True):
            f.write(json.dumps({"prompt": prompt, "seed": seed, "reward": r}) + "\n")
    summary = {
        "run_dir": str(run_dir),
        "num_samples": len(prompts),
        "reward_mean": out.rewards.mean().item(),
        "reward_std": out.rewards.std().item() if len(prompts) > 1 else 0.0,
        "seconds_per_sample_sampling": out.seconds_sampling / len(prompts),
        "seconds_per_sample_scoring": out.seconds_scoring / len(prompts),
        "device": str(device),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
