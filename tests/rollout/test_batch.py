import pytest
import torch

from diffusion.conditioning import Conditioning
from rollout.batch import RolloutBatch


def _batch(n: int, version: int = 3) -> RolloutBatch:
    return RolloutBatch(
        prompts=[f"p{i}" for i in range(n)],
        cond=Conditioning(torch.arange(n * 6.0).view(n, 2, 3), torch.arange(n * 2.0).view(n, 2)),
        latents=torch.randn(n, 4, 2, 2),
        times=torch.zeros(n),
        groups=torch.arange(n) // 2,
        seeds=torch.arange(n) + 100,
        rewards=torch.arange(n, dtype=torch.float32),
        reward_terms={"a": torch.ones(n), "b": torch.zeros(n)},
        policy_version=version,
        seconds={"rollout": 1.0},
    )


def test_chunk_then_concat_gives_back_the_rows_in_order():
    batch = _batch(8)
    shards = batch.chunk(2)
    assert [s.prompts for s in shards] == [["p0", "p1", "p2", "p3"], ["p4", "p5", "p6", "p7"]]
    back = RolloutBatch.concat(shards)
    assert back.prompts == batch.prompts
    torch.testing.assert_close(back.latents, batch.latents)
    torch.testing.assert_close(back.cond.prompt_embeds, batch.cond.prompt_embeds)
    torch.testing.assert_close(back.reward_terms["a"], batch.reward_terms["a"])
    assert back.seconds == {"rollout": 2.0}  # summed over the parts


def test_concat_keeps_the_oldest_policy_version():
    assert RolloutBatch.concat([_batch(2, version=5), _batch(2, version=4)]).policy_version == 4


def test_uneven_split_and_ragged_rows_are_errors():
    with pytest.raises(ValueError, match="do not split evenly over 3 learners"):
        _batch(8).chunk(3)
    good = _batch(4)
    with pytest.raises(ValueError, match="rows"):
        RolloutBatch(good.prompts, good.cond, good.latents[:3], good.times, good.groups, good.seeds, good.rewards, good.reward_terms, 0)
