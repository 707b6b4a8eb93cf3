"""RolloutBatch: its shards and concatenation; the summary the driver reads and the references the learners fetch."""

import pytest
import torch

from diffusion.conditioning import Conditioning
from rollout.batch import BatchRefs, RolloutBatch, RolloutSummary


def _batch(n: int, version: int = 3) -> RolloutBatch:
    """n rows in groups of 2 images of one prompt, p0 p0 p1 p1 ...; prompt k's encoding holds k's numbers."""
    k = (n + 1) // 2
    return RolloutBatch(
        prompts=[f"p{i // 2}" for i in range(n)],
        cond=Conditioning(torch.arange(k * 6.0).view(k, 2, 3), torch.arange(k * 2.0).view(k, 2)),
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
    assert [s.prompts for s in shards] == [["p0", "p0", "p1", "p1"], ["p2", "p2", "p3", "p3"]]
    back = RolloutBatch.concat(shards)
    assert back.prompts == batch.prompts
    torch.testing.assert_close(back.latents, batch.latents)
    torch.testing.assert_close(back.cond.prompt_embeds, batch.cond.prompt_embeds)
    torch.testing.assert_close(back.reward_terms["a"], batch.reward_terms["a"])
    assert back.seconds == {"rollout": 2.0}  # summed over the parts


def _row_encodings(batch: RolloutBatch) -> torch.Tensor:
    return batch.cond.prompt_embeds[batch.cond_index()]


def test_a_batch_holds_one_encoding_per_distinct_prompt_and_its_rows_find_theirs():
    batch = _batch(8)
    assert len(batch.cond) == 4 and batch.cond_index().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    expected = _row_encodings(batch)
    # A shard starting inside a group keeps only its own prompts' encodings, each once.
    shard = batch.rows(slice(3, 7))
    assert shard.prompts == ["p1", "p2", "p2", "p3"] and len(shard.cond) == 3
    assert torch.equal(_row_encodings(shard), expected[3:7])
    # Two parts sharing prompt p1 (a group split over two workers): one encoding in the whole.
    whole = RolloutBatch.concat([batch.rows(slice(0, 3)), batch.rows(slice(3, 8))])
    assert len(whole.cond) == 4 and torch.equal(_row_encodings(whole), expected)
    with pytest.raises(ValueError, match="4 distinct prompts has 8 encodings"):
        RolloutBatch(batch.prompts, Conditioning.concat([batch.cond, batch.cond]), batch.latents, batch.times, batch.groups,
                     batch.seeds, batch.rewards, batch.reward_terms, 0)


def test_concat_keeps_the_oldest_policy_version():
    assert RolloutBatch.concat([_batch(2, version=5), _batch(2, version=4)]).policy_version == 4


def test_uneven_split_and_ragged_rows_are_errors():
    with pytest.raises(ValueError, match="do not split evenly over 3 learners"):
        _batch(8).chunk(3)
    good = _batch(4)
    with pytest.raises(ValueError, match="rows"):
        RolloutBatch(good.prompts, good.cond, good.latents[:3], good.times, good.groups, good.seeds, good.rewards, good.reward_terms, 0)


def _assert_same_rows(a: RolloutBatch, b: RolloutBatch) -> None:
    assert a.prompts == b.prompts and a.policy_version == b.policy_version
    for x, y in ((a.latents, b.latents), (a.cond.prompt_embeds, b.cond.prompt_embeds), (a.cond.pooled, b.cond.pooled),
                 (a.times, b.times), (a.groups, b.groups), (a.seeds, b.seeds), (a.rewards, b.rewards)):
        assert torch.equal(x, y)


def test_shards_fetched_by_reference_are_the_rows_the_batch_would_hand_over(ray_local):
    # Two workers' batches of 3 and 5 rows over 4 learners: shards of 2 rows, one of them across both.
    parts = [_batch(3), _batch(5)]
    refs = BatchRefs([(ray_local.put(p), 0, len(p)) for p in parts])
    shards = refs.chunk(4)
    assert [len(s) for s in shards] == [2, 2, 2, 2] and len(shards[1].parts) == 2
    for by_reference, handed_over in zip(shards, RolloutBatch.concat(parts).chunk(4), strict=True):
        _assert_same_rows(by_reference.fetch(), handed_over)
    with pytest.raises(ValueError, match="do not split evenly over 3 learners"):
        refs.chunk(3)


def test_the_summary_holds_what_the_driver_reads_and_is_small():
    parts = [_batch(3, version=5), _batch(5, version=4)]
    parts[1].seconds = {"rollout": 3.0}
    summary = RolloutSummary.concat([p.summary() for p in parts])
    assert torch.equal(summary.rewards, torch.cat([p.rewards for p in parts]))
    assert torch.equal(summary.groups, torch.cat([p.groups for p in parts]))
    assert summary.policy_version == 4 and summary.seconds == {"rollout": 3.0}  # the slowest worker's
    assert summary.batch_bytes == sum(p.nbytes() for p in parts) > summary.nbytes()
