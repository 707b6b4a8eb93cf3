"""What the value arm's DiffusionNFT step should cost against the full arm's on SD3.5-M, from FLOP counts
of the real components built on the meta device (world/cost.py): the prediction printed beside the
tiny world's measured ratio, whose costs differ (cheap rollouts, a reward tail as costly as a block).

    python benchmarks/nft_step_flops.py     # SD3.5-M at 512 px, 25 steps, stops 12..17, CLIP ViT-L/14-336

Per sample, in backbone forward passes F (no CFG: DiffusionNFT samples without it):
- rollout: one pass per sampler step taken (all of them, or up to the stop k);
- scoring: full arm, the VAE decode and the reward tower; value arm, the backbone's first i blocks
  (i / blocks of F; the stitch is a 1x1 conv) and the reward tower from block 1 (the paper's (4, 1));
- learner: at each of its max(1, int(0.99 n)) trained times (n = 25 times above a clean sample's stop,
  k above a stop after step k), the policy's forward and backward (2 F with LoRA, whose frozen weights
  need no gradient; 3 F for a full finetune), the old policy's forward and the reference's (the KL).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_scale import nft_sample_cost, nft_step_ratio  # noqa: E402
from world.cost import sd35m_nft_costs  # noqa: E402


def sample_costs(c: dict, *, value_blocks: int, lora: bool) -> dict:
    """The per-image component FLOPs `nft_sample_cost` composes, from `sd35m_nft_costs`' counts."""
    F = c["backbone_forward_flops"]
    return {"forward": F, "full_scoring": c["vae_decode_flops"] + c["reward_tower_flops"],
            "value_scoring": value_blocks / c["num_blocks"] * F + c["reward_tower_flops"],
            "learner_time": (2 if lora else 3) * F + F + F}  # policy forward + backward, old policy, reference


def step_flops(c: dict, *, num_steps: int, stop: int | None, fraction: float, value_blocks: int, lora: bool) -> float:
    """FLOPs of one sample's share of a step (rollout, scoring, learner); stop None is a full rollout."""
    return nft_sample_cost(sample_costs(c, value_blocks=value_blocks, lora=lora), num_steps=num_steps, stop=stop,
                           fraction=fraction)


def predicted_step_ratio(c: dict, num_steps: int = 25, window: tuple[int, int] = (12, 17), fraction: float = 0.99,
                         value_blocks: int = 4, lora: bool = True) -> float:
    """The value arm's mean step FLOPs (stops uniform over `window`) over the full arm's; c: the costs
    `sd35m_nft_costs` counts (512 px unless told)."""
    return nft_step_ratio(sample_costs(c, value_blocks=value_blocks, lora=lora), num_steps=num_steps, window=window,
                          fraction=fraction)


if __name__ == "__main__":
    c = sd35m_nft_costs()
    print(json.dumps({**c, "predicted_step_ratio_lora": predicted_step_ratio(c), "predicted_step_ratio_full_finetune":
                      predicted_step_ratio(c, lora=False)}))
