import json

import pytest
import torch
from safetensors.torch import save_file

from value.preference_pairs import PreferencePairs


def pairs(n: int = 3) -> PreferencePairs:
    g = torch.Generator().manual_seed(0)
    return PreferencePairs([f"prompt {k}" for k in range(n)], torch.randn(n, 4, 8, 8, generator=g),
                           torch.randn(n, 4, 8, 8, generator=g), ["hard_negative"] * n)


def test_a_pair_file_round_trips(tmp_path):
    original = pairs()
    original.save(tmp_path / "p.safetensors")
    loaded = PreferencePairs.load(tmp_path / "p.safetensors")
    assert loaded.prompts == original.prompts and loaded.sources == original.sources
    torch.testing.assert_close(loaded.chosen, original.chosen)
    torch.testing.assert_close(loaded.select([2, 0]).rejected, original.rejected[[2, 0]])
    assert len(PreferencePairs.concat([original, loaded])) == 6
    parts = list(original.batches(2))
    assert [start for start, _ in parts] == [0, 2] and [p for _, part in parts for p in part.prompts] == original.prompts


def test_bad_pairs_are_refused(tmp_path):
    p = pairs()
    with pytest.raises(ValueError, match="both sides of every pair must be latents of one shape"):
        PreferencePairs(p.prompts, p.chosen, p.rejected[:, :3], p.sources)
    with pytest.raises(ValueError, match="a pair has no prompt"):
        PreferencePairs(["", "b", "c"], p.chosen, p.rejected, p.sources)
    with pytest.raises(ValueError, match="one prompt and one source per pair"):
        PreferencePairs(p.prompts[:2], p.chosen, p.rejected, p.sources)
    nan = p.chosen.clone()
    nan[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        PreferencePairs(p.prompts, nan, p.rejected, p.sources)


def test_bad_pair_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs.path: .*no such pair file"):
        PreferencePairs.load(tmp_path / "missing.safetensors")
    p = pairs()
    save_file({"chosen": p.chosen, "rejected": p.rejected}, str(tmp_path / "no_prompts.safetensors"),
              metadata={"sources": json.dumps(p.sources)})
    with pytest.raises(ValueError, match=r"lacks \['prompts'\]"):
        PreferencePairs.load(tmp_path / "no_prompts.safetensors")
    save_file({"chosen": p.chosen, "rejected": p.rejected[:, :2].contiguous()}, str(tmp_path / "shapes.safetensors"),
              metadata={"prompts": json.dumps(p.prompts), "sources": json.dumps(p.sources)})
    with pytest.raises(ValueError, match="shapes.safetensors.*latents of one shape"):
        PreferencePairs.load(tmp_path / "shapes.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="not a readable safetensors pair file"):
        PreferencePairs.load(tmp_path / "junk.safetensors")
