"""The learner group and the rollout workers as real Ray actors: DeepSpeed over gloo on CPU."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from diffusion.trainable import FinetuneConfig
from learner.draft_learner import DraftLearner, DraftSetup
from learner.draft_objective import DraftConfig
from learner.learner import LearnerConfig
from learner.learner_group import LearnerGroup, shard
from learner.nft_learner import NFTLearner, NFTSetup
from learner.nft_loss import NFTLossConfig, optimality_probability
from rollout.worker import RolloutConfig, RolloutWorker
from rollout.worker_group import RolloutWorkerGroup
from value.reward_config import RewardConfig
from value.weighted_reward import RewardTermConfig

MODEL = ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)
REWARDS = {"clip": RewardTermConfig(model=RewardConfig(kind="random_tiny_clip"))}
ROLLOUT = RolloutConfig(num_workers=2, batch_size=8, sampler=SamplerConfig(num_steps=4))


def _setup(num_learners: int) -> NFTSetup:
    return NFTSetup(
        model=MODEL, finetune=FinetuneConfig(), nft=NFTLossConfig(kl_weight=0.1),
        learner=LearnerConfig(num_learners=num_learners, micro_batch=2, timestep_fraction=0.99, lr=1e-3, zero_stage=2),
        rows_per_step=8, rollout_steps=4, height=16, width=16,
    )


def _batch():
    worker = RolloutWorker(MODEL, REWARDS, FinetuneConfig(), ROLLOUT, height=16, width=16)
    prompts = [p for p in ("a red seven", "two blue threes", "a one", "a green four above a two") for _ in range(2)]
    return worker.sample(prompts, [i // 2 for i in range(8)], list(range(8)))


def test_rows_shard_into_equal_contiguous_parts_whatever_holds_them():
    assert shard(["a", "b", "c", "d"], 2) == [["a", "b"], ["c", "d"]]
    assert [t.tolist() for t in shard(torch.arange(6), 3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="5 rows do not split evenly over 2 learners"):
        shard(list(range(5)), 2)


def _one_step_on_one_and_two_learners(ray, learner, setup, *rows, save_to=None) -> list[tuple[dict, dict, dict]]:
    """Per group size 1 and 2: (trained weights, evaluation EMA, stats) after one step on `rows`; the
    checkpoint under save_to/<n> if given."""
    results = []
    for n in (1, 2):
        group = LearnerGroup(learner, setup(n), timeout_s=120)
        stats = group.train_step(*rows, step=1)
        if save_to is not None:
            (save_to / str(n)).mkdir()
            group.save(str(save_to / str(n)))
        results.append((group.policy_weights(), ray.get(group.eval_weights()), stats))
        group.shutdown()
    return results


def _assert_same_update(results) -> None:
    (one, one_ema, one_stats), (two, two_ema, two_stats) = results
    assert max((one[n] - one_ema[n]).abs().max().item() for n in one) > 1e-5  # the step moved the weights
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(two_ema[name], one_ema[name], rtol=1e-4, atol=1e-6)
    assert abs(one_stats["loss"] - two_stats["loss"]) < 1e-4 * abs(one_stats["loss"])


def test_two_zero2_learners_make_the_same_update_as_one_with_the_whole_batch(ray_local):
    batch = _batch()
    _, r = optimality_probability(batch.rewards, batch.groups, 5.0)
    _assert_same_update(_one_step_on_one_and_two_learners(ray_local, NFTLearner, _setup, batch, r))


def test_rows_stopped_at_different_times_still_make_one_update_shared_by_the_ranks(ray_local, tmp_path):
    """Rows 0-3 stopped near the noise end train at 1 time, rows 4-7 (clean) at 3 of 4: rank 0 has 2
    micro-batches and rank 1 6, so rank 0 pads with passes that add nothing (ZeRO-2 reduces in every
    pass). The update equals one learner's with the whole batch, and it is one optimizer step."""
    batch = _batch()
    batch = dataclasses.replace(batch, times=torch.tensor([0.95] * 4 + [0.0] * 4))
    _, r = optimality_probability(batch.rewards, batch.groups, 5.0)
    results = _one_step_on_one_and_two_learners(ray_local, NFTLearner, _setup, batch, r, save_to=tmp_path)
    _assert_same_update(results)
    assert [stats["times_per_row"] for _, _, stats in results] == [2.0, 2.0]  # (4 x 1 + 4 x 3) / 8
    for n in (1, 2):
        for rank in range(n):
            state = load_file(str(tmp_path / str(n) / f"optimizer_rank{rank}.safetensors"))
            assert {k: v.item() for k, v in state.items() if k.endswith(".step")} == {"g0.p0.step": 1.0}


def test_draft_two_zero2_learners_make_the_same_update_as_one_sampling_the_whole_step(ray_local):
    """DRaFT samples inside the learner step: the rows' noise follows their seeds and the stops their
    micro-batch's index in the step, so how the rows are split over ranks does not change the update."""
    setup = lambda n: DraftSetup(  # noqa: E731
        model=MODEL, rewards=REWARDS, draft=DraftConfig(sampler=SamplerConfig(num_steps=4), grad_steps=2, reg_weight=0.1),
        learner=LearnerConfig(num_learners=n, micro_batch=2, lr=1e-3, zero_stage=2), rows_per_step=4, height=16, width=16,
    )
    prompts, seeds = ["a red seven", "two blue threes", "a one", "a green four above a two"], [5, 6, 7, 8]
    _assert_same_update(_one_step_on_one_and_two_learners(ray_local, DraftLearner, setup, prompts, seeds))


def test_published_weights_are_identical_on_every_rollout_worker(ray_local):
    group = LearnerGroup(NFTLearner, _setup(2), timeout_s=120)
    workers = RolloutWorkerGroup(ROLLOUT, dict(model=MODEL, rewards=REWARDS, finetune=FinetuneConfig(), height=16, width=16), timeout_s=120)
    batch = _batch()
    r = optimality_probability(batch.rewards, batch.groups, 5.0)[1]
    group.train_step(batch, r, step=1)
    published = group.publish()
    workers.load_weights(published, version=1)
    expected = ray_local.get(published)
    loaded = ray_local.get([w.policy_weights.remote() for w in workers.workers])
    for weights in loaded:
        assert weights.keys() == expected.keys()
        assert all(torch.equal(weights[n], expected[n]) for n in expected)
    pending = workers.sample(["a red seven"] * 4, [0, 0, 1, 1], [1, 2, 3, 4])
    sampled, rows = workers.collect(pending)
    assert sampled.policy_version == 1
    # The driver read rewards and ids only; the rows it passes on by reference are the ones they score.
    fetched = rows.fetch()
    assert torch.equal(fetched.rewards, sampled.rewards) and fetched.policy_version == 1
    # batch_bytes: what the workers left in the store (each its own encoding of the prompt they share).
    assert sampled.nbytes() < 0.01 * sampled.batch_bytes and fetched.nbytes() <= sampled.batch_bytes
    group.shutdown()
    workers.shutdown()
