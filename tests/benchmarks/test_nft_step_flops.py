"""The SD3.5-M step-cost prediction nft_speed prints, against the arithmetic written out by hand."""

import pytest

from tests.benchmarks import load_benchmark


def _module():
    return load_benchmark("nft_step_flops")


COSTS = {"backbone_forward_flops": 100.0, "num_blocks": 24, "vae_decode_flops": 30.0, "reward_tower_flops": 12.0}


def test_a_full_and_a_stopped_sample_cost_what_the_protocol_says():
    m = _module()
    # Full: 25 sampler passes, decode and reward, 24 trained times of (2 LoRA forward+backward, old, ref) passes.
    full = m.step_flops(COSTS, num_steps=25, stop=None, fraction=0.99, value_blocks=4, lora=True)
    assert full == pytest.approx(25 * 100 + 30 + 12 + 24 * 4 * 100)
    # Stopped after step 14: 14 passes, the value (4 of 24 blocks + the tower), 13 trained times.
    stopped = m.step_flops(COSTS, num_steps=25, stop=14, fraction=0.99, value_blocks=4, lora=True)
    assert stopped == pytest.approx(14 * 100 + 4 / 24 * 100 + 12 + 13 * 4 * 100)
    assert m.step_flops(COSTS, num_steps=25, stop=14, fraction=0.99, value_blocks=4, lora=False) == pytest.approx(
        stopped + 13 * 100)
