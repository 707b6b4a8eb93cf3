"""House rules that code review would otherwise have to catch (STYLE.md rules 7, 11, 18, 19)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("diffusion", "value", "stitching", "rollout", "learner")


def _sources(*dirs):
    for d in dirs:
        yield from (ROOT / d).rglob("*.py")


def test_tests_mirror_the_packages():
    for pkg in PACKAGES:
        modules = [p for p in (ROOT / pkg).glob("*.py") if p.name != "__init__.py"]
        if modules:
            assert (ROOT / "tests" / pkg).is_dir(), f"{pkg}/ has modules but tests/{pkg}/ does not exist"


def test_no_dumping_ground_modules():
    for path in _sources(*PACKAGES, "launch"):
        assert path.stem not in {"utils", "common", "helpers", "misc"}, path


def test_device_and_backend_names_live_in_one_module():
    pattern = re.compile(r"""\.cuda\(|["']cuda["']|["']nccl["']""")
    for path in _sources(*PACKAGES, "launch"):
        if path.relative_to(ROOT).as_posix() == "diffusion/device.py":
            continue
        assert not pattern.search(path.read_text()), f"{path}: resolve devices through diffusion/device.py"


def test_generator_value_and_stitching_know_nothing_of_ray_or_deepspeed():
    pattern = re.compile(r"^\s*(import|from)\s+(ray|deepspeed)\b", re.M)
    for path in _sources("diffusion", "value", "stitching"):
        assert not pattern.search(path.read_text()), f"{path} imports ray or deepspeed"


def test_the_world_and_the_launch_scripts_sit_above_every_layer():
    """The tiny world is a preset: the layers that must also serve SD3.5 and FLUX get its data passed down."""
    pattern = re.compile(r"^\s*(import|from)\s+(world|launch)\b", re.M)
    for path in _sources(*PACKAGES):
        assert not pattern.search(path.read_text()), f"{path} imports world/ or launch/; pass their data down instead"


def test_one_loop_over_a_schedule():
    """diffusion.sampling.integrate is the only loop over a schedule; samplers extend it with StepHooks.
    (FK proposals draw several candidates of one step, so rollout/particles.py may call a step.)"""
    loop = re.compile(r"times\[k \+ 1\]")
    step = re.compile(r"\b(euler_step|sde_step|sampler_step)\(")
    for path in _sources(*PACKAGES, "launch", "world"):
        name = path.relative_to(ROOT).as_posix()
        if name == "diffusion/sampling.py":
            continue
        text = path.read_text()
        assert not loop.search(text), f"{name} loops over a schedule; use diffusion.sampling.integrate with StepHooks"
        if name != "rollout/particles.py":
            assert not step.search(text), f"{name} takes sampler steps itself; use diffusion.sampling.integrate"
