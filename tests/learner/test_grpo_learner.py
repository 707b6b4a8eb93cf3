"""The Flow-GRPO learner on a worker's batch, both in this process (cluster.mode=in_process): the
maintainers' on-policy check, and training that moves the log-probabilities the way the advantages say."""

import torch

from diffusion.model_config import ModelConfig
from diffusion.sampling import SamplerConfig
from diffusion.trainable import FinetuneConfig
from learner.grpo_learner import GRPOLearner, GRPOSetup
from learner.grpo_loss import GRPOConfig
from learner.learner import LearnerConfig
from learner.learner_group import LearnerGroup
from learner.nft_loss import optimality_probability
from rollout.actors import IN_PROCESS
from rollout.sde_window import SDEWindow
from rollout.worker import RolloutConfig, RolloutWorker
from value.reward_config import RewardConfig
from value.weighted_reward import RewardTermConfig

MODEL = ModelConfig(family="sd3", init="random_tiny", max_sequence_length=8)
REWARDS = {"clip": RewardTermConfig(model=RewardConfig(kind="random_tiny_clip"))}
SAMPLER = SamplerConfig(num_steps=6)


def _group(updates: int, lr: float = 1e-3) -> LearnerGroup:
    setup = GRPOSetup(model=MODEL, finetune=FinetuneConfig(), grpo=GRPOConfig(updates_per_batch=updates, kl_weight=0.04),
                      learner=LearnerConfig(num_learners=1, micro_batch=4, lr=lr), rows_per_step=8, sampler=SAMPLER,
                      height=16, width=16)
    return LearnerGroup(GRPOLearner, setup, timeout_s=60, mode=IN_PROCESS)


def _batch(window: SDEWindow):
    worker = RolloutWorker(MODEL, REWARDS, FinetuneConfig(), RolloutConfig(num_workers=1, batch_size=4, sampler=SAMPLER),
                           height=16, width=16)
    prompts = [p for p in ("a red seven", "two blue threes", "a one", "a green four above a two") for _ in range(2)]
    return worker.sample(prompts, [i // 2 for i in range(8)], list(range(8)), window=window)


def test_at_a_batchs_first_update_every_trained_steps_ratio_is_one():
    for window in (SDEWindow(start=0, stop=5, sde_noise=0.7), SDEWindow(start=1, stop=3, sde_noise=0.7)):
        group = _group(updates=2)
        batch = _batch(window)
        advantages, _ = optimality_probability(batch.rewards, batch.groups, 5.0)
        stats = group.train_step(batch, advantages, step=1)
        assert stats["first_update_ratio_dev"] < 1e-5  # sampled with the weights the learner starts from
        assert stats["ratio"] != 1.0  # the second update of the batch sees the first one's change
        group.shutdown()


def test_training_raises_the_log_probability_of_steps_with_positive_advantage():
    window = SDEWindow(start=0, stop=5, sde_noise=0.7)
    batch = _batch(window)
    advantages = torch.tensor([1.0, -1.0] * 4)
    group = _group(updates=1, lr=1e-3)
    for step in range(1, 4):
        group.train_step(batch, advantages, step=step)
    stats = group.train_step(batch, advantages, step=4)  # its first update reports the trained weights' ratios
    learner = group.actors[0].obj
    with torch.no_grad():
        ratios = []
        for j in range(5):
            z, z_next = batch.steps["latents"][:, j], batch.steps["latents"][:, j + 1]
            _, parts = learner._step_loss(z, z_next, j, batch.cond.index(batch.cond_index()), batch.steps["log_probs"][:, j], advantages)
            ratios.append(parts["ratio"])
        log_ratio = torch.stack(ratios, 1).log().mean(1)
    assert stats["first_update_ratio_dev"] > 0
    assert (log_ratio[advantages > 0].mean() > 0) and (log_ratio[advantages < 0].mean() < 0)
    group.shutdown()
