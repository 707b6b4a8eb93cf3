"""A folder is replaced whole or not at all."""

import pytest

from diffusion.atomic_folder import write_folder_atomically


def test_replaces_the_folder_and_a_failed_write_leaves_the_old_one(tmp_path):
    target = tmp_path / "thing"
    write_folder_atomically(target, lambda d: (d / "a.txt").write_text("one"))
    write_folder_atomically(target, lambda d: (d / "b.txt").write_text("two"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]

    def crash(d):
        (d / "c.txt").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_folder_atomically(target, crash)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
