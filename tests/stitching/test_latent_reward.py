import pytest
import torch

from stitching.latent_reward import LatentRewardTrainingConfig, pairwise_accuracy, snap_to_table, train_latent_reward
from value.latent_reward import LatentRewardConfig, LatentRewardModel
from value.preference_pairs import PreferencePairs


def shifted_pairs(n: int, seed: int) -> PreferencePairs:
    """A preference any reader of the latent can learn: the chosen latent's first channel is brighter."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 4, 8, 8, generator=g)
    chosen, rejected = base.clone(), torch.randn(n, 4, 8, 8, generator=g)
    chosen[:, 0] += 1.0
    rejected[:, 0] -= 1.0
    return PreferencePairs(["a red one"] * n, chosen, rejected, ["synthetic"] * n)


def test_snapping_picks_the_nearest_table_time():
    table = torch.tensor([1.0, 0.5, 0.1])
    torch.testing.assert_close(snap_to_table(torch.tensor([0.9, 0.31, 0.0]), table), torch.tensor([1.0, 0.5, 0.1]))


def test_training_learns_a_learnable_preference_and_is_reproducible(sd3_model):
    held_out = shifted_pairs(128, seed=1)

    def trained(seed: int) -> tuple[LatentRewardModel, dict]:
        torch.manual_seed(0)
        model = LatentRewardModel(sd3_model, LatentRewardConfig(blocks=1, image_taps=[1], text_taps=[1], lora_rank=4,
                                                                 num_heads=2))
        before = pairwise_accuracy(model, held_out, 0.1, seed=0)
        out = train_latent_reward(model, shifted_pairs(512, seed=0),
                                  LatentRewardTrainingConfig(steps=60, batch_size=32, lr=3e-3, warmup_steps=5, ema_decay=0.9),
                                  seed=seed)
        return model, {"before": before, **out}

    model, out = trained(seed=0)
    after = pairwise_accuracy(model, held_out, 0.1, seed=0)
    assert out["before"] < 0.75 and after > 0.95, (out, after)
    # Same seeds, same weights (the seed draws the batches, the noise levels and the noise).
    again, _ = trained(seed=0)
    for (name, a), b in zip(model.trainable_state_dict().items(), again.trainable_state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_nan_scores_stop_training_and_evaluation_with_the_setting_to_fix(sd3_model):
    model = LatentRewardModel(sd3_model, LatentRewardConfig(blocks=1, image_taps=[1], text_taps=[1], lora_rank=4, num_heads=2))
    with torch.no_grad():
        model.head.head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss is nan at step 1 .*lower train.lr"):
        train_latent_reward(model, shifted_pairs(8, seed=0), LatentRewardTrainingConfig(steps=1, batch_size=4), seed=0)
    with pytest.raises(FloatingPointError, match="LatentRewardModel scored NaN or inf on pairs 0..7 at t=0.5"):
        pairwise_accuracy(model, shifted_pairs(8, seed=0), 0.5, seed=0)
