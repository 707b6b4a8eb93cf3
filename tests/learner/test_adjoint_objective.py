"""AM's step choice and loss clip, the reward-gradient refusals, and both losses on the tiny generator."""

import numpy as np
import pytest
import torch

from learner.adjoint_objective import (
    AdjointConfig, EAMConfig, Endpoints, QuantileClip, am_loss, eam_loss, nfe_per_sample, reward_gradient, stratified_steps,
)


def test_stratified_steps_split_60_40_skip_the_first_step_and_follow_the_rng():
    for seed in range(50):
        steps = stratified_steps(20, 4, np.random.default_rng(seed))
        assert len(set(steps)) == 4 and all(1 <= k <= 19 for k in steps) and steps == sorted(steps)
        assert sum(k <= 11 for k in steps) == 2  # 60% of the 19 trainable steps 1..19 is 1..11
    assert stratified_steps(20, 4, np.random.default_rng(3)) == stratified_steps(20, 4, np.random.default_rng(3))
    assert sorted(stratified_steps(4, 3, np.random.default_rng(0))) == [1, 2, 3]  # too few for the split: all of them
    drawn = {k for seed in range(200) for k in stratified_steps(20, 4, np.random.default_rng(seed))}
    assert drawn == set(range(1, 20))


def test_the_quantile_clip_drops_losses_above_the_running_quantile():
    clip = QuantileClip(0.5)
    losses = torch.tensor([1.0, 4.0, 9.0, 16.0])  # sqrt: 1 2 3 4, median 2.5
    assert clip.mask(losses).tolist() == [1, 1, 0, 0] and clip.value == pytest.approx(2.5)
    clip.mask(torch.tensor([36.0, 36.0]))  # the second update averages: (2.5 + 6) / 2
    assert clip.value == pytest.approx(4.25)
    for _ in range(20):
        clip.mask(torch.tensor([1.0, 1.0]))
    assert 1.0 < clip.value < 1.5  # the EMA (0.9) forgets
    assert QuantileClip(0.0).mask(losses).tolist() == [1, 1, 1, 1]


def test_a_reward_without_gradient_or_with_nan_is_refused():
    x0 = torch.randn(3, 4, 2, 2)
    with pytest.raises(ValueError, match="need a differentiable reward"):
        reward_gradient(lambda z, t, p: (z.flatten(1).sum(1) > 0).float(), x0, ["a"] * 3)
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        reward_gradient(lambda z, t, p: z.flatten(1).sum(1) * float("nan"), x0, ["a"] * 3)
    r, g = reward_gradient(lambda z, t, p: (z**2).flatten(1).sum(1), x0, ["a"] * 3)
    torch.testing.assert_close(g, 2 * x0)


def _endpoints(sd3_model, n_steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(n_steps + 1, 2, 4, 8, 8, generator=g)
    return Endpoints(latents=latents, reward=torch.zeros(2), grad_r=torch.randn(2, 4, 8, 8, generator=g))


def test_both_losses_vanish_without_a_reward_only_where_the_target_is_the_reference(sd3_model):
    """AM at lambda = 0: the adjoint is zero, the target is u_pre, so the policy = reference has zero loss.
    EAM at lambda = 0 is not zero on random endpoints (it pulls them toward the model's own law)."""
    cond = sd3_model.encode_prompt(["a red seven", "two blue threes"])
    times = sd3_model.schedule(4, 8, 8)
    ends = _endpoints(sd3_model, 4)
    loss, parts = am_loss(sd3_model, sd3_model, ends, cond, times=times, steps=[1, 3], lam=0.0, clip=QuantileClip(0.0))
    assert loss.item() < 1e-10 and parts["adjoint_norm"] == 0.0  # the batched pass differs in the last bits
    loss, _ = am_loss(sd3_model, sd3_model, ends, cond, times=times, steps=[1, 3], lam=10.0, clip=QuantileClip(0.0))
    assert loss.item() > 0
    loss, _ = eam_loss(sd3_model, sd3_model, ends, cond, lam=0.0, cfg=EAMConfig(), generator=torch.Generator().manual_seed(0))
    assert loss.item() > 0


def test_eam_loss_follows_its_generator():
    cfg = EAMConfig(train_times=3)

    class Zero:
        def velocity(self, z, t, cond):
            return torch.zeros_like(z)

    from diffusion.conditioning import Conditioning
    cond = Conditioning(torch.zeros(2, 1, 1), torch.zeros(2, 1))
    ends = Endpoints(latents=torch.randn(1, 2, 1, 2, 2), reward=torch.zeros(2), grad_r=torch.ones(2, 1, 2, 2))
    run = lambda s: eam_loss(Zero(), Zero(), ends, cond, lam=1.0, cfg=cfg, generator=torch.Generator().manual_seed(s))[0]  # noqa: E731
    assert run(1).item() == run(1).item() != run(2).item()


def test_nfe_per_sample_counts_each_methods_passes():
    am = nfe_per_sample(AdjointConfig(method="am"))
    eam = nfe_per_sample(AdjointConfig(method="eam", cfg_scale=4.5))
    assert am == {"forward": 20, "forward_backward": 24, "reward_vjp": 1}
    assert eam == {"forward": 10 * 2 + 1, "forward_backward": 4, "reward_vjp": 1}  # guided: two passes a step
