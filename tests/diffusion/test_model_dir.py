"""A missing or incomplete model directory gives one clear error naming the problem."""

import json
import shutil

import pytest

from diffusion.model_config import ModelConfig, build_flow_model


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*model.path"):
        build_flow_model(ModelConfig(family="sd3", path=str(tmp_path / "nope")))


def test_directory_without_model_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model_index.json"):
        build_flow_model(ModelConfig(family="sd3", path=str(tmp_path)))


def test_missing_component_folder(sd3_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sd3_dir, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(FileNotFoundError, match="incomplete.*'vae'"):
        build_flow_model(ModelConfig(family="sd3", path=str(broken)))


def test_missing_weights_file(sd3_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sd3_dir, broken)
    for f in (broken / "transformer").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="transformer/ has a config.json but no weights"):
        build_flow_model(ModelConfig(family="sd3", path=str(broken)))


def test_wrong_family(flux_dir):
    with pytest.raises(ValueError, match="FluxPipeline.*model.family"):
        build_flow_model(ModelConfig(family="sd3", path=str(flux_dir)))


def test_config_validation():
    with pytest.raises(ValueError, match="model.family='sdxl'"):
        ModelConfig(family="sdxl", path="x")
    with pytest.raises(ValueError, match="model.path is empty"):
        ModelConfig(family="sd3")


def test_model_index_names_the_real_classes(sd3_dir):
    index = json.loads((sd3_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusion3Pipeline"
    assert index["transformer"] == ["diffusers", "SD3Transformer2DModel"]
    assert index["text_encoder_3"] == [None, None]
