"""Training checkpoints: an optimizer's state through safetensors and back resumes exactly; only complete
step folders count, and the newest two are kept."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from diffusion.checkpoint import latest_checkpoint, load_optimizer_tensors, optimizer_tensors, write_checkpoint


def _model_and_opt():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def _step(model, opt, k: int) -> None:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(k))
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()


def test_optimizer_state_round_trips_through_safetensors_and_resumes_exactly(tmp_path):
    whole, whole_opt = _model_and_opt()
    for k in range(5):
        _step(whole, whole_opt, k)
    part, part_opt = _model_and_opt()
    for k in range(3):
        _step(part, part_opt, k)
    save_file(optimizer_tensors(part_opt), str(tmp_path / "optimizer.safetensors"))
    weights = {k: v.clone() for k, v in part.state_dict().items()}
    resumed, resumed_opt = _model_and_opt()
    resumed.load_state_dict(weights)
    load_optimizer_tensors(resumed_opt, load_file(str(tmp_path / "optimizer.safetensors")))
    for k in range(3, 5):
        _step(resumed, resumed_opt, k)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_state_of_other_parameters_is_refused():
    _, opt = _model_and_opt()
    with pytest.raises(ValueError, match="no parameter here.*fresh directory"):
        load_optimizer_tensors(opt, {"0.exp_avg": torch.zeros(8, 4)})  # the stitcher's older layout
    with pytest.raises(ValueError, match="no parameter here"):
        load_optimizer_tensors(opt, {"g0.p9.exp_avg": torch.zeros(1)})


def test_only_complete_checkpoints_count_and_two_are_kept(tmp_path):
    for step in (1, 2, 3):
        write_checkpoint(tmp_path, step, lambda tmp: (tmp / "w.txt").write_text("x"), {"step": step})
    (tmp_path / "step_000009").mkdir()  # a crash before its state.json: not a checkpoint
    assert latest_checkpoint(tmp_path).name == "step_000003"
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000002", "step_000003", "step_000009"]
