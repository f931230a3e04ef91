"""Local files written whole, with the modes any other file of the user's gets."""

import subprocess
import sys
import textwrap

import pytest


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
