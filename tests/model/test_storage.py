import pytest

from planet_core import storage


def test_local_round_trip_glob_and_delete(tmp_path):
    base = str(tmp_path / "out")
    path = storage.join(base, "a", "b.txt")
    storage.write_text(path, "héllo")  # parents are made
    assert storage.read_text(path) == "héllo" and storage.exists(path)
    storage.write_bytes(storage.join(base, "a", "c.bin"), b"\x00\x01")
    assert storage.glob(storage.join(base, "**")) == [path, storage.join(base, "a", "c.bin")]
    assert storage.glob(storage.join(base, "a", "*.txt")) == [path]
    storage.delete([path])
    assert not storage.exists(path)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(path)
    storage.delete([])  # nothing to do is not an error


def test_a_local_delete_removes_files_and_folders_and_names_what_it_could_not(tmp_path):
    """Every path is tried: a missing one does not stop the others, and the error names it afterwards."""
    (tmp_path / "run" / "part").mkdir(parents=True)
    (tmp_path / "run" / "part" / "x.parquet").write_bytes(b"x")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "kept").write_text("k")
    (tmp_path / "link").symlink_to(tmp_path / "kept")
    missing = str(tmp_path / "missing.txt")
    with pytest.raises(OSError, match=r"could not delete 1 of 4 paths: .*missing\.txt: No such file"):
        storage.delete([str(tmp_path / "run"), missing, str(tmp_path / "a.txt"), str(tmp_path / "link")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # the link went, not what it points to


def test_join_keeps_uris():
    assert storage.join("gs://bucket/scans/", "scan_date=2026-06-01", "x") == "gs://bucket/scans/scan_date=2026-06-01/x"
    assert storage.join("", "a") == "a"
