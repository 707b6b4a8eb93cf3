"""Every config composes into its typed schema; unknown group values and misspelt keys fail loudly."""

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from launch.config_schema import GenerateJobConfig, register_schemas

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
REWARDS = sorted(p.stem for p in (CONFIGS / "reward").glob("*.yaml"))

register_schemas()


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose("generate", overrides=overrides)


def test_the_groups_hold_the_presets_users_expect():
    assert {"tiny_random", "sd35_medium", "sd35_large", "flux_dev"} <= set(MODELS)
    assert {"tiny_random", "clip_vitl14_336", "dfn_clip_vith14", "hpsv2", "aesthetic"} <= set(REWARDS)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("reward", REWARDS)
def test_every_combination_builds_its_dataclasses(model, reward):
    cfg = OmegaConf.to_object(_compose([f"model={model}", f"reward={reward}"]))
    assert isinstance(cfg, GenerateJobConfig)
    assert type(cfg.model).__name__ == "ModelConfig" and type(cfg.reward).__name__ == "RewardConfig"


def test_paths_are_overridable():
    cfg = OmegaConf.to_object(_compose(["model=sd35_medium", "model.path=/data/sd35", "reward=hpsv2", "reward.path=/x.pt"]))
    assert cfg.model.path == "/data/sd35" and cfg.reward.path == "/x.pt"


def test_unknown_group_value_names_the_options():
    with pytest.raises(MissingConfigException, match=r"model/sd4.*(\n.*)*sd35_medium"):
        _compose(["model=sd4"])


def test_misspelt_key_fails_instead_of_becoming_a_default(tmp_path):
    with pytest.raises(ConfigCompositionException, match="model.pth"):
        _compose(["model.pth=/data"])
    with pytest.raises(ConfigCompositionException, match="sampler.num_step"):
        _compose(["sampler.num_step=3"])
    # ...and in a YAML preset a user adds to a group.
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "model" / "typo.yaml").write_text("family: sd3\ninit: random_tiny\nmax_seq_len: 8\n")
    with initialize_config_dir(config_dir=str(configs), version_base=None):
        with pytest.raises(ConfigCompositionException, match="max_seq_len"):
            compose("generate", overrides=["model=typo"])


def test_bad_values_fail_in_the_dataclass():
    with pytest.raises(ValueError, match="model.family='sdxl'"):
        OmegaConf.to_object(_compose(["model.family=sdxl"]))
    with pytest.raises(ValueError, match="sampler.num_steps=0"):
        OmegaConf.to_object(_compose(["sampler.num_steps=0"]))


@pytest.mark.parametrize(("job", "experiment"), [("nft", "nft_sd35m_multi_node"), ("draft", "draft_sd35m_multi_node"),
                                                 ("stitch", "stitch_sd35m_clip")])
def test_the_real_model_experiments_compose_into_their_schemas(job, experiment):
    """The presets for SD3.5-M (paths filled in as a user would): every key exists and every value validates."""
    paths = {"nft": ["prompts.train_file=/d/t.txt", "prompts.eval_file=/d/e.txt"],
             "draft": ["prompts.train_file=/d/t.txt", "prompts.eval_file=/d/e.txt", "draft.value.path=/d/value"],
             "stitch": ["images.path=/d/images"]}[job]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        raw = compose(job, overrides=[f"+experiment={experiment}", "model.path=/d/sd35m", "run_dir=/tmp/x", *paths])
    cfg = OmegaConf.to_object(raw)
    assert cfg.model.path == "/d/sd35m" and cfg.device in ("cuda", "auto")
    if job == "nft":  # the official recipe's, not the tiny world's (lr 1e-3, KL 0.1) it composes over
        assert (cfg.learner.lr, cfg.nft.kl_weight) == (3e-4, 1e-4)
    if job == "stitch":  # the paper's image-side loss: the tiny recipe's score term would need tiny captions
        assert (cfg.stitch.distill.lr, cfg.stitch.distill.score_weight) == (1e-5, 0.0)


def test_the_prompted_tiny_stitch_preset_composes_onto_the_tiny_recipe():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = OmegaConf.to_object(compose("stitch", overrides=["+experiment=stitch_tiny_prompted", "run_dir=/tmp/x"]))
    assert cfg.stitch.prompted and cfg.stitch.distill.teacher == "tweedie" and cfg.images.kind == "generator"
    assert cfg.reward.path.endswith("preference") and cfg.stitch.distill.steps == 800  # the tiny recipe's rest
