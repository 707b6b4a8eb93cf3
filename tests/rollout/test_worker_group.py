"""The rollout workers as Ray actors: a worker whose process is killed mid-batch is restarted by Ray and
asked again, and the batch comes back whole (seeded: the same rows as an undisturbed one)."""

import logging
import os
import signal

import torch

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from diffusion.trainable import FinetuneConfig
from rollout.worker import RolloutConfig
from rollout.worker_group import RolloutWorkerGroup
from value.reward_config import RewardConfig
from value.weighted_reward import RewardTermConfig

MODEL = ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)
REWARDS = {"clip": RewardTermConfig(model=RewardConfig(kind="random_tiny_clip"))}


def test_a_worker_killed_mid_batch_is_restarted_and_its_rows_sampled_again(ray_local, caplog):
    # 200 sampler steps: the batch is still being sampled when its worker's process is killed.
    cfg = RolloutConfig(num_workers=2, batch_size=8, sampler=SamplerConfig(num_steps=200), max_restarts=1)
    workers = RolloutWorkerGroup(cfg, dict(model=MODEL, rewards=REWARDS, finetune=FinetuneConfig(), height=16, width=16),
                                 timeout_s=120)
    base = ray_local.get(workers.workers[0].policy_weights.remote())
    # Version 1 differs from the weights a restarted worker builds: it must load them to sample as asked.
    workers.load_weights(ray_local.put({n: w + 0.01 for n, w in base.items()}), version=1)
    prompts = [p for p in ("a red seven", "two blue threes", "a one", "a green four above a two") for _ in range(2)]
    groups, seeds = [i // 2 for i in range(8)], list(range(8))
    expected, _ = workers.collect(workers.sample(prompts, groups, seeds))

    pid = ray_local.get(workers.workers[1].pid.remote())
    requests = workers.sample(prompts, groups, seeds)
    os.kill(pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="rollout.worker_group"):
        summary, rows = workers.collect(requests)

    assert "rollout worker 1 died" in caplog.text
    assert ray_local.get(workers.workers[1].pid.remote()) != pid  # a new process
    fetched = rows.fetch()
    assert fetched.seeds.tolist() == seeds and fetched.groups.tolist() == groups  # every row once, in order
    assert summary.policy_version == 1 and torch.equal(summary.rewards, expected.rewards)
    workers.shutdown()
