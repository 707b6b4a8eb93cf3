"""Stage 2 on the tiny models: it lowers the distillation loss, leaves the backbone and the teacher as
they were, a run resumed from a checkpoint ends where an uninterrupted one does (seeded), and the score
term reads only what its captions span and adds to the loss at its weight."""

import pytest
import torch
import torch.nn.functional as F

from diffusion.checkpoint import latest_checkpoint
from stitching.distill import DistillConfig, caption_score_loss, distill, distill_loss
from stitching.images import ImageBatch
from tests.tiny_models import stitched_from_fit, tiny_clip_reward
from value.stitched import BackboneFeatures, StitchedValue, StitchLayer

PROMPTS = ["a red seven", "two blue threes", "a green one", ""]


def _images(step: int) -> ImageBatch:
    return ImageBatch(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(100 + step)), PROMPTS)


def _value(backbone, reward, probe) -> StitchedValue:
    return stitched_from_fit(backbone, reward, probe, max_j=1)


def _fixed_loss(value, reward, backbone) -> float:
    x0 = _images(999).images
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z0 = backbone.encode(x0)
        t = torch.full((4,), 0.3)
        z_t = 0.7 * z0 + 0.3 * torch.randn(z0.shape, generator=g)
        return distill_loss(value, reward, x0, z_t, t, PROMPTS, 1.0).item()


def test_distillation_lowers_the_loss_and_trains_only_the_stitch_and_tower(sd3_model, probe_images, tmp_path):
    reward = tiny_clip_reward()
    value = _value(sd3_model, reward, probe_images)
    teacher_before = {k: v.clone() for k, v in reward.state_dict().items()}
    backbone_before = {k: v.clone() for k, v in sd3_model.transformer.state_dict().items()}
    before = _fixed_loss(value, reward, sd3_model)
    cfg = DistillConfig(steps=40, batch=4, lr=1e-3, warmup_steps=5, checkpoint_every=20)
    stats = distill(value, reward, sd3_model.encode, _images, cfg, checkpoint_dir=tmp_path)
    assert _fixed_loss(value, reward, sd3_model) < 0.7 * before
    assert stats["steps"] == 40 and stats["resumed_from"] is None
    assert all(torch.equal(v, reward.state_dict()[k]) for k, v in teacher_before.items())
    assert all(torch.equal(v, sd3_model.transformer.state_dict()[k]) for k, v in backbone_before.items())
    assert all(p.grad is None for p in sd3_model.transformer.parameters())  # no backward through the backbone
    assert latest_checkpoint(tmp_path).name == "step_000040"


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(sd3_model, probe_images, tmp_path):
    reward = tiny_clip_reward()
    kw = dict(batch=4, lr=1e-3, warmup_steps=2, checkpoint_every=2)
    whole = _value(sd3_model, reward, probe_images)
    distill(whole, reward, sd3_model.encode, _images, DistillConfig(steps=4, **kw), checkpoint_dir=tmp_path / "a")
    first = _value(sd3_model, reward, probe_images)
    distill(first, reward, sd3_model.encode, _images, DistillConfig(steps=2, **kw), checkpoint_dir=tmp_path / "b")
    resumed = _value(sd3_model, reward, probe_images)  # a fresh process: weights come from the checkpoint
    stats = distill(resumed, reward, sd3_model.encode, _images, DistillConfig(steps=4, **kw), checkpoint_dir=tmp_path / "b")
    assert stats["resumed_from"].endswith("step_000002")
    for k, v in whole.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k


def test_a_checkpoint_from_another_stitch_point_is_refused(sd3_model, probe_images, tmp_path):
    reward = tiny_clip_reward()
    cfg = DistillConfig(steps=1, batch=4, checkpoint_every=1)
    distill(_value(sd3_model, reward, probe_images), reward, sd3_model.encode, _images, cfg, checkpoint_dir=tmp_path)
    other = StitchedValue(BackboneFeatures(sd3_model, 1), reward, j=1, stitch=StitchLayer(8, 64, (4, 4)))
    with pytest.raises(ValueError, match="another stitch point"):
        distill(other, reward, sd3_model.encode, _images, DistillConfig(steps=2, batch=4), checkpoint_dir=tmp_path)


def test_an_aesthetic_teacher_adds_its_score_to_the_smooth_l1_losses(sd3_model, probe_images):
    from value.aesthetic import AestheticHead, AestheticScore
    from value.image_transform import ImageTransform

    clip = tiny_clip_reward()
    torch.manual_seed(0)
    teacher = AestheticScore(clip.tower, AestheticHead((32, 16, 8, 8, 4, 1)).eval(), ImageTransform(size=32))
    value = stitched_from_fit(sd3_model, teacher, probe_images, max_j=1)
    x0 = _images(0).images
    t = torch.full((4,), 0.4)
    with torch.no_grad():
        z_t = 0.6 * sd3_model.encode(x0) + 0.4 * torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
        loss = distill_loss(value, teacher, x0, z_t, t, PROMPTS, token_weight=1.0)
        tokens = teacher.tower.run_from(teacher.tokens_at(teacher.preprocess(x0), 1), 1)
        embed = F.normalize(teacher.tower.pool(tokens), dim=-1)
        s_tokens = value.tower.run_from(value.tokens(z_t, t, PROMPTS), 1)
        s_embed = F.normalize(value.tower.pool(s_tokens), dim=-1)
        parts = [F.smooth_l1_loss(s_tokens, tokens), F.smooth_l1_loss(s_embed, embed),
                 F.smooth_l1_loss(teacher.head(s_embed), teacher.head(embed))]
    assert parts[2] > 0
    assert loss.item() == pytest.approx(sum(p.item() for p in parts), rel=1e-5)


def test_the_score_term_reads_only_the_directions_the_captions_span_whatever_their_spread():
    g = torch.Generator().manual_seed(0)
    text = F.normalize(torch.cat([torch.randn(6, 4, generator=g), torch.zeros(6, 4)], 1), dim=-1)  # dims 0-3
    embed = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    nudge = 0.3 * torch.randn(5, 4, generator=g)
    off_span = embed + torch.cat([torch.zeros(5, 4), nudge], 1)
    in_span = embed + torch.cat([nudge, torch.zeros(5, 4)], 1)
    assert caption_score_loss(off_span, embed, text).item() == pytest.approx(0, abs=1e-10)
    assert caption_score_loss(in_span, embed, text).item() > 0.01
    assert caption_score_loss(3 * in_span, 3 * embed, text).item() == pytest.approx(
        caption_score_loss(in_span, embed, text).item(), rel=1e-5)


def test_the_score_weight_adds_the_score_term_against_the_captions(sd3_model, probe_images):
    reward = tiny_clip_reward()
    value = _value(sd3_model, reward, probe_images)
    captions = ["a red seven", "two blue threes", "a green one", "four nines"]
    x0, t = _images(0).images, torch.full((4,), 0.4)
    with torch.no_grad():
        z_t = 0.6 * sd3_model.encode(x0) + 0.4 * torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
        plain = distill_loss(value, reward, x0, z_t, t, PROMPTS, 1.0)
        text = reward.text_embeddings(captions)
        scored = distill_loss(value, reward, x0, z_t, t, PROMPTS, 1.0, score_weight=3.0, caption_text=text)
        embed = F.normalize(reward.tower.encode(reward.preprocess(x0)), dim=-1)
        term = caption_score_loss(F.normalize(value.embed(z_t, t, PROMPTS), dim=-1), embed, text)
    assert term > 0
    assert scored.item() == pytest.approx(plain.item() + 3.0 * term.item(), rel=1e-5)


def test_a_score_term_without_captions_is_a_clear_error(sd3_model, probe_images, tmp_path):
    reward = tiny_clip_reward()
    cfg = DistillConfig(steps=1, batch=4, score_weight=1.0)
    with pytest.raises(ValueError, match="distill.score_weight=1.0"):
        distill(_value(sd3_model, reward, probe_images), reward, sd3_model.encode, _images, cfg, checkpoint_dir=tmp_path)


def test_the_tweedie_teacher_reads_the_one_step_estimate_of_each_noised_latent(sd3_model, probe_images, tmp_path):
    from value.baselines import TweedieValue

    reward = tiny_clip_reward()
    estimate = TweedieValue(sd3_model, reward).estimate
    seen = []

    def one_step(z_t, t, prompts):
        seen.append((z_t, t, prompts))
        return estimate(z_t, t, prompts)

    cfg = DistillConfig(steps=1, batch=4, checkpoint_every=1, teacher="tweedie")
    fresh = _value(sd3_model, reward, probe_images)
    stats = distill(_value(sd3_model, reward, probe_images), reward, sd3_model.encode, _images, cfg,
                    checkpoint_dir=tmp_path / "tweedie", one_step=one_step)
    (z_t, t, prompts), = seen
    assert prompts == PROMPTS and z_t.shape == (4, 4, 8, 8)
    with torch.no_grad():
        on_estimate = distill_loss(fresh, reward, estimate(z_t, t, prompts), z_t, t, prompts, cfg.token_weight)
        on_clean = distill_loss(fresh, reward, _images(0).images, z_t, t, prompts, cfg.token_weight)
    assert stats["loss_first"] == pytest.approx(on_estimate.item(), rel=1e-5)
    assert abs(on_estimate.item() - on_clean.item()) > 1e-3 * on_clean.item()


def test_a_tweedie_teacher_without_the_estimate_or_an_unknown_teacher_is_a_clear_error(sd3_model, probe_images, tmp_path):
    reward = tiny_clip_reward()
    with pytest.raises(ValueError, match="pass one_step"):
        distill(_value(sd3_model, reward, probe_images), reward, sd3_model.encode, _images,
                DistillConfig(steps=1, batch=4, teacher="tweedie"), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="distill.teacher='mc'"):
        DistillConfig(teacher="mc")
