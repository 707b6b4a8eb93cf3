"""A partial or corrupt component is detected and rebuilt; nothing already written is lost on failure."""

import pytest

from world.artifacts import check_component, write_component


def _write(folder):
    (folder / "weights.bin").write_bytes(b"1234")


def test_complete_component_is_reused(tmp_path):
    write_component(tmp_path / "vae", {"steps": 3}, _write)
    assert check_component(tmp_path / "vae", {"steps": 3}) is None


def test_missing_partial_corrupt_and_stale_components(tmp_path):
    assert check_component(tmp_path / "vae", {"steps": 3}) == "missing"
    (tmp_path / "half").mkdir()
    assert "partial" in check_component(tmp_path / "half", {"steps": 3})
    write_component(tmp_path / "vae", {"steps": 3}, _write)
    assert check_component(tmp_path / "vae", {"steps": 4}) == "built from another recipe"
    (tmp_path / "vae" / "weights.bin").write_bytes(b"12")
    assert "corrupt" in check_component(tmp_path / "vae", {"steps": 3})


def test_a_failed_write_keeps_the_old_component(tmp_path):
    write_component(tmp_path / "vae", {"steps": 3}, _write)

    def crash(folder):
        (folder / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_component(tmp_path / "vae", {"steps": 4}, crash)
    assert (tmp_path / "vae" / "weights.bin").read_bytes() == b"1234"
    assert check_component(tmp_path / "vae", {"steps": 3}) is None
