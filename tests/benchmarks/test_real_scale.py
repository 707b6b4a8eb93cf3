"""benchmarks/real_scale.py: its step compositions against the arithmetic written out by hand, its FLOP
scaling, and one run end to end with the real architectures shrunk (seeded: the same inputs every run)."""

import json
import sys

import pytest
import torch

from tests.benchmarks import load_benchmark


def _module():
    return load_benchmark("real_scale")


# Per-sample costs of each component, distinct powers of two so a wrong count shows.
C = {"forward": 1.0, "forward_cfg": 2.0, "denoiser_grad_cfg": 4.0, "learner_lora": 8.0, "learner_full": 16.0,
     "decode": 32.0, "decode_grad": 64.0, "clip": 128.0, "clip_grad": 256.0, "hps": 512.0, "hps_grad": 1024.0,
     "value_clip": 0.5, "value_clip_grad": 0.25, "value_hps": 0.125, "value_hps_grad": 0.0625,
     "optimizer_lora": 72.0, "optimizer_full": 720.0}


def test_dps_steps_pay_for_the_gradient_each_kind_needs():
    m = _module()
    assert m.dps_step_cost(C, value=True) == 2.0 + 0.0625
    assert m.dps_step_cost(C, value=False) == 4.0 + 64.0 + 1024.0


def test_nft_samples_follow_the_official_protocol_above_the_stop():
    m = _module()
    c = {"forward": 1.0, "full_scoring": 100.0, "value_scoring": 3.0, "learner_time": 10.0, "optimizer": 0.5}
    # Full: 25 passes, decode + towers, 24 trained times; stopped after step 14: 14 passes, values, 13 times.
    assert m.nft_sample_cost(c, num_steps=25, stop=None, fraction=0.99) == 25 + 100 + 24 * 10 + 0.5
    assert m.nft_sample_cost(c, num_steps=25, stop=14, fraction=0.99) == 14 + 3 + 13 * 10 + 0.5
    stops = range(12, 18)
    mean = sum(k + 3 + (k - 1) * 10 + 0.5 for k in stops) / len(stops)  # int(0.99 k) = k - 1 for k <= 17
    assert m.nft_step_ratio(c) == pytest.approx(mean / (25 + 100 + 240 + 0.5))


def test_draft_differentiates_k_steps_then_the_reward_or_the_value():
    m = _module()
    c = {"forward": 1.0, "learner_lora": 8.0, "full_scoring_grad": 100.0, "value_scoring_grad": 2.0, "optimizer": 0.5}
    # DRaFT-1: 9 plain passes, one differentiated step (policy + reference), decode + towers' gradient.
    assert m.draft_sample_cost(c, num_steps=10, stop=None, grad_steps=1) == 9 + 9 + 100 + 0.5
    assert m.draft_sample_cost(c, num_steps=10, stop=5, grad_steps=1) == 4 + 9 + 2 + 0.5
    mean = sum((k - 1) + 9 + 2 + 0.5 for k in range(3, 8)) / 5
    assert m.draft_step_ratio(c) == pytest.approx(mean / 118.5)


def test_fk_counts_particles_potentials_and_proposals():
    m = _module()
    fk = m.PAPER_FK  # 40 steps: resampling at 8, 12, ..., 32 (7), proposals at steps 0..15 (16), N = 4, M = 2
    plain = m.FKConfig(particles=4, resample_steps="8-32", resample_every=4)
    assert m.fk_sample_cost(C, plain, num_steps=40, value=False) == 4 * (40 * 2 + 7 * (32 + 512) + 32 + 512)
    assert m.fk_sample_cost(C, fk, num_steps=40, value=True) == 4 * (40 * 2 + 7 * 0.125 + 32 + 512) + 16 * 4 * 2 * 0.125


def test_pair_ratios_use_the_papers_protocols():
    m = _module()
    r = m.pair_ratios(C)
    assert r["dps"] == pytest.approx(2.0625 / 1092)
    nft = {"forward": 1.0, "full_scoring": 32 + 128 + 512, "value_scoring": 0.625, "learner_time": 10.0,
           "optimizer": 72 / 72}
    assert r["nft"] == pytest.approx(m.nft_step_ratio(nft))
    assert r["nft_full_finetune"] == pytest.approx(m.nft_step_ratio({**nft, "learner_time": 18.0, "optimizer": 10.0}))


def test_scaling_grows_each_component_by_its_own_flops_and_leaves_the_towers():
    m = _module()
    flops = {256: {"transformer": 10, "decode": 4, "value_clip": 2, "value_hps": 3},
             1024: {"transformer": 200, "decode": 64, "value_clip": 4, "value_hps": 3}}
    out = m.scaled(C, flops, 256, 1024)
    assert out["forward"] == 20 * C["forward"] and out["learner_full"] == 20 * C["learner_full"]
    assert out["decode_grad"] == 16 * C["decode_grad"] and out["value_clip_grad"] == 2 * C["value_clip_grad"]
    assert out["hps_grad"] == C["hps_grad"] and out["optimizer_full"] == C["optimizer_full"]


@pytest.mark.slow
def test_a_shrunken_run_measures_every_component_and_checks_the_composition(monkeypatch, capsys):
    m = _module()
    monkeypatch.setattr(m, "SD35_MEDIUM_TRANSFORMER", dict(
        m.SD35_MEDIUM_TRANSFORMER, num_layers=5, num_attention_heads=2, attention_head_dim=16, joint_attention_dim=64,
        caption_projection_dim=32, pooled_projection_dim=32, dual_attention_layers=(0,)))
    monkeypatch.setattr(m, "SD35_VAE", dict(m.SD35_VAE, block_out_channels=(8, 8, 16, 16), norm_num_groups=4))
    monkeypatch.setattr(m, "TOWERS", {"clip": ("ViT-B-32", "shortest"), "hps": ("ViT-B-32", "longest")})
    monkeypatch.setattr(m, "SD35_TEXT_TOKENS", 7)
    monkeypatch.setattr(m.EmbeddedPromptsSD3, "encode_prompt", lambda self, prompts: m.Conditioning(
        torch.ones(len(prompts), 7, 64, device=self.transformer.device),
        torch.ones(len(prompts), 32, device=self.transformer.device)))
    monkeypatch.setattr(sys, "argv", ["real_scale.py", "--resolutions", "64", "128", "--repeats", "1"])
    m.main()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["resolutions"] == [64, 128] and out["predicted_resolutions"] == [512, 1024]
    for pair in ("dps", "nft", "nft_full_finetune", "draft", "fk"):
        for key in (f"{pair}_step_ratio", f"{pair}_step_ratio_512", f"{pair}_step_ratio_1024", f"{pair}_step_ratio_measured_64"):
            assert out[key] > 0, key
    assert set(out["components"]["1024"]) == set(C)
    assert out["dps_peak_mem_ratio"] > 0
    for kind in ("value", "tweedie"):
        check = out["check"][kind]
        assert check["seconds"] > 0 and check["peak_bytes"] > 0 and abs(check["relative_error"]) < 5, check
