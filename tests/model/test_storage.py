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


def test_join_keeps_uris():
    assert storage.join("gs://bucket/scans/", "scan_date=2026-06-01", "x") == "gs://bucket/scans/scan_date=2026-06-01/x"
    assert storage.join("", "a") == "a"
