"""Local files written whole, with the modes any other file of the user's gets; empty folders tidied."""

import subprocess
import sys
import textwrap

import pytest

from planet_core import storage


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_get_the_mode_open_gives_under_the_umask(tmp_path, umask):
    """``mkstemp`` makes 0600 files: a manifest or summary written through it would be unreadable to the
    group that reads the data beside it. Each process's umask decides, as for ``open()``."""
    script = textwrap.dedent(f"""
        import os, stat, sys
        os.umask({umask:#o})
        from planet_core import storage
        folder = sys.argv[1]
        storage.write_text(os.path.join(folder, "written.json"), "{{}}")
        storage.swap(os.path.join(folder, "swapped.json"), lambda current: b"{{}}")
        open(os.path.join(folder, "plain.json"), "w").close()
        print(" ".join(oct(stat.S_IMODE(os.stat(os.path.join(folder, n)).st_mode))
                       for n in ("written.json", "swapped.json", "plain.json")))
    """)
    written, swapped, plain = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                                             capture_output=True, text=True).stdout.split()
    assert written == swapped == plain == oct(0o666 & ~umask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.json", "swapped.json", "written.json"]


def test_a_folder_to_write_that_is_a_file_is_bad_usage_and_stays(tmp_path):
    """``check_writable``: a file where a folder is wanted is a :class:`UserError` naming it (exit 2), the file
    untouched; a folder under a file cannot be made: a ``PermissionError`` (exit 1) naming it; a new folder is
    made."""
    from planet_core import storage
    from planet_core.errors import UserError

    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(UserError, match=f"^{taken}: a file, not a folder$"):
        storage.check_writable(str(taken))
    with pytest.raises(PermissionError, match=f"^{taken}/sub: cannot write there"):
        storage.check_writable(str(taken / "sub"))
    storage.check_writable(str(tmp_path / "new"))
    assert taken.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["new", "taken"]


def test_delete_empty_folders_removes_every_empty_folder_and_keeps_each_that_holds_a_file(tmp_path):
    for folder in ("root/a", "root/b", "root/c/d/e", "root/f/g"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "root/b/kept.txt").write_text("someone's")
    (tmp_path / "root/f/kept.txt").write_text("someone's")
    storage.delete_empty_folders(str(tmp_path / "root"))
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "root").rglob("*"))
    assert left == ["root/b", "root/b/kept.txt", "root/f", "root/f/kept.txt"]
    storage.delete_empty_folders(str(tmp_path / "missing"))  # nothing there: nothing to do
