"""``safe_extract`` on archives the tests build themselves: what it must refuse before writing
anything (every link, and whatever would land outside or stop tarfile half-way), and the
harmless layouts it must still extract. Each refusal is checked with the standard library's
``filter="data"`` and without it (Python before 3.10.12 / 3.11.4), where safe_extract's own
checks are all there is. The CIFAR-10 download path is covered in test_data.py."""

import os
import re
import stat
import tarfile

import pytest

from deep_learning_suite.safe_archive import MAX_NAME_BYTES, UnsafeArchiveError, safe_extract

from .test_data import _add, _member

S, L, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE


def _tar(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            _add(tar, member)
    return path


@pytest.fixture(params=[True, False], ids=["with the stdlib filter", "alone"])
def stdlib_filter(request, monkeypatch):
    if not request.param:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


# Each archive starts with a harmless file, so "nothing written" shows the refusal came first.
REFUSED = {
    # ".." is refused in a name even where it would stay inside (as the docstring says).
    "'..' staying inside": ([_member("a", DIR), _member("a/../b")], "'a/../b' has an absolute path or '..'"),
    # Windows-absolute names are refused on every system, so an archive is judged the same
    # everywhere.
    "backslash-absolute": ([_member("\\evil")], "has an absolute path"),
    "drive letter": ([_member("C:evil")], "has an absolute path"),
    "bare drive": ([_member("C:")], "has an absolute path"),
    "FIFO": ([_member("p", tarfile.FIFOTYPE)], "'p' is a device, FIFO or other special file"),
    "block device": ([_member("b", tarfile.BLKTYPE)], "'b' is a device"),
    # Links: each of these was let through by a check that followed the archive's links.
    # A link that stays inside is refused like one that leads out.
    "symlink inside": ([_member("d", DIR), _member("d/up", S, "..")], "'d/up' is a symlink to '..'; a dataset"),
    "symlink out, unused": ([_member("d", DIR), _member("d/out", S, "../../outside")], "'d/out' is a symlink"),
    "absolute symlink": ([_member("l", S, "/etc")], "'l' is a symlink to '/etc'"),
    "hard link to an earlier file": ([_member("h", L, "f")], "'h' is a hard link to 'f'; a dataset"),
    "hard link ../f from a folder": ([_member("d", DIR), _member("d/h", L, "../f")], "'d/h' is a hard link"),
    "chain": ([_member("c", S, "."), _member("a", S, "c/.."), _member("a/evil")], "'c' is a symlink"),
    # tarfile cannot unlink the directory a, so it copies d/e there and a stays a real
    # directory: a/../.. is then the target's parent.
    "symlink over a directory": ([_member("d", DIR), _member("d/e", DIR), _member("a", DIR),
                                  _member("a", S, "d/e"), _member("x", S, "a/../.."), _member("x/evil")],
                                 "'a' is a symlink"),
    # tarfile copies the symlink d/c -> .. to d/h, so d/h/.. is the target's parent.
    "hard link to a symlink": ([_member("d", DIR), _member("d/c", S, ".."), _member("d/h", L, "d/c"),
                                _member("z", S, "d/h/.."), _member("z/evil")], "'d/c' is a symlink"),
    # A directory made through a link, re-pointed afterwards: tarfile sets the directory's
    # mode and times at the very end, through the link as it is then.
    "directory through a re-pointed link": ([_member("d", DIR), _member("c", S, "d"), _member("a", S, "c/.."),
                                             _member("a", DIR), _member("c", S, ".")], "'c' is a symlink"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, stdlib_filter, case):
    members, message = REFUSED[case]
    (tmp_path / "outside").mkdir()
    archive = _tar(tmp_path / "a.tar", [_member("f", payload=b"written first")] + members)
    t = tmp_path / "t"
    with pytest.raises(UnsafeArchiveError, match=re.escape(message) + ".*refusing to extract the archive"):
        safe_extract(archive, t)
    assert os.listdir(t) == [] and os.listdir(tmp_path / "outside") == []
    assert sorted(os.listdir(tmp_path)) == ["a.tar", "outside", "t"]


def _pax_named(name):
    """A file whose name comes from a pax header, which (unlike the ustar field) may hold a NUL."""
    info, payload = _member("placeholder")
    info.pax_headers = {"path": name}
    return info, payload


# Archives that would stop tarfile half-way through, with what the refusal must say.
INCONSISTENT = {
    "file over a directory": ([_member("d", DIR), _member("d")], "'d' is a file but would be written where the folder"),
    "file over an implied directory": ([_member("d/x"), _member("d")], "'d' is a file but would be written"),
    "directory over a file": ([_member("g"), _member("g", DIR)], "'g' needs a folder where there is a file"),
    "file under a file": ([_member("g"), _member("g/x")], "'g/x' needs a folder where there is a file"),
    "directory under a file": ([_member("g"), _member("g/x/y", DIR)], "'g/x/y' needs a folder where"),
    "file named a/.": ([_member("a", DIR), _member("a/.")], "'a/.' is a file but its name ends in a folder"),
    "file named g/": ([_member("g/")], "'g/' is a file but its name ends in a folder"),
    "name part too long": ([_member("d/" + "x" * (MAX_NAME_BYTES + 1))],
                           f"has a name part of {MAX_NAME_BYTES + 1} bytes"),
    # 128 two-byte characters: 256 bytes on disk
    "name part too long in bytes": ([_member("\u00e9" * 128)], "has a name part of 256 bytes"),
    "NUL in a name": ([_pax_named("a\0b")], "has a NUL character in its name"),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
def test_an_archive_tarfile_would_stop_in_is_refused_before_anything_is_written(tmp_path, stdlib_filter, case):
    members, message = INCONSISTENT[case]
    archive = _tar(tmp_path / "a.tar", [_member("f", payload=b"written first")] + members)
    t = tmp_path / "t"
    with pytest.raises(UnsafeArchiveError, match=re.escape(message) + ".*refusing to extract the archive"):
        safe_extract(archive, t)
    assert os.listdir(t) == []


def test_the_longest_name_part_is_extracted(tmp_path, stdlib_filter):
    name = "x" * MAX_NAME_BYTES
    safe_extract(_tar(tmp_path / "a.tar", [_member(f"d/{name}", payload=b"data")]), tmp_path / "t")
    assert (tmp_path / "t" / "d" / name).read_bytes() == b"data"


def test_files_and_folders_are_extracted_as_named(tmp_path, stdlib_filter):
    # "./f", "a//b" and "d/" name f, a/b and d; a later file replaces an earlier one; a
    # "." folder is the target itself.
    archive = _tar(tmp_path / "a.tar", [_member(".", DIR), _member("./f", payload=b"old"),
                                        _member("d/", DIR), _member("d/e", DIR),
                                        _member("a//b", payload=b"ab"), _member("f", payload=b"new"),
                                        _member("d/e/g", payload=b"deep")])
    t = tmp_path / "t"
    safe_extract(archive, t)
    assert (t / "f").read_bytes() == b"new" and (t / "a" / "b").read_bytes() == b"ab"
    assert (t / "d" / "e" / "g").read_bytes() == b"deep"
    assert sorted(os.listdir(t)) == ["a", "d", "f"]


def test_a_target_reached_through_a_symlink_is_extracted(tmp_path, stdlib_filter):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    safe_extract(_tar(tmp_path / "a.tar", [_member("d", DIR), _member("d/f", payload=b"data")]),
                 tmp_path / "alias")
    assert (tmp_path / "real" / "d" / "f").read_bytes() == b"data"


def test_a_link_already_on_disk_that_stays_inside_is_followed(tmp_path, stdlib_filter):
    # The archive cannot make or change links, so one left by an earlier run is followed as
    # the kernel will follow it.
    t = tmp_path / "t"
    (t / "real").mkdir(parents=True)
    (t / "x").symlink_to("real")
    safe_extract(_tar(tmp_path / "a.tar", [_member("x/f", payload=b"through x")]), t)
    assert (t / "real" / "f").read_bytes() == b"through x" and os.readlink(t / "x") == "real"


@pytest.mark.parametrize("outside", ["outside", "t2"], ids=["elsewhere", "sibling sharing the prefix"])
def test_a_link_already_on_disk_that_leads_out_is_refused(tmp_path, stdlib_filter, outside):
    # The archive alone is harmless; the link left in the target by an earlier run is not.
    # "t2" next to the target "t" has the target's path as a string prefix.
    t, out = tmp_path / "t", tmp_path / outside
    t.mkdir()
    out.mkdir()
    (t / "x").symlink_to(os.path.join("..", outside))
    archive = _tar(tmp_path / "a.tar", [_member("first", payload=b"written first"),
                                        _member("x/evil")])
    with pytest.raises(UnsafeArchiveError, match="'x/evil' would land outside"):
        safe_extract(archive, t)
    assert sorted(os.listdir(t)) == ["x"] and os.listdir(out) == []


@pytest.mark.parametrize("left, member, message", [
    ("dir", _member("d"), "'d' is a file but would be written where the folder"),
    ("link to a dir", _member("d"), "'d' is a file but would be written where the folder"),   # through the link
    ("file", _member("d/x"), "'d/x' needs a folder where there is a file"),
    ("file", _member("d", DIR), "'d' needs a folder where there is a file"),
], ids=["file over a folder", "file over a link to a folder", "file under a file", "folder over a file"])
def test_what_an_earlier_run_left_counts_as_well(tmp_path, stdlib_filter, left, member, message):
    t = tmp_path / "t"
    t.mkdir()
    if left == "dir":
        (t / "d").mkdir()
    elif left == "link to a dir":
        (t / "real").mkdir()
        (t / "d").symlink_to("real")
    else:
        (t / "d").write_bytes(b"left")
    archive = _tar(tmp_path / "a.tar", [_member("first", payload=b"written first"), member])
    with pytest.raises(UnsafeArchiveError, match=re.escape(message)):
        safe_extract(archive, t)
    assert sorted(os.listdir(t)) == ["d"] + (["real"] if left == "link to a dir" else [])


def test_extracted_files_get_safe_permissions(tmp_path, stdlib_filter):
    # An archive cannot hand out setuid or world-writable files, nor files their owner cannot
    # read, nor an executable bit its owner lacks (the standard library's "data" filter, or
    # the same rules applied by safe_extract where Python has no filter).
    modes = {"setuid": 0o4777, "unreadable": 0o000, "group-exec": 0o654, "other-exec": 0o645,
             "plain": 0o644, "exec": 0o755}
    members = []
    for name, mode in modes.items():
        members.append(_member(name, payload=b"x"))
        members[-1][0].mode = mode
    folder = _member("sticky", DIR)
    folder[0].mode = 0o1777
    t = tmp_path / "t"
    safe_extract(_tar(tmp_path / "a.tar", members + [folder]), t)
    got = {name: stat.S_IMODE((t / name).stat().st_mode) for name in modes}
    assert got["setuid"] & (stat.S_ISUID | stat.S_IWGRP | stat.S_IWOTH) == 0
    assert got["unreadable"] & 0o600 == 0o600
    assert got["group-exec"] & 0o111 == 0 and got["other-exec"] & 0o111 == 0
    assert got["plain"] == 0o644 and got["exec"] == 0o755
    assert stat.S_IMODE((t / "sticky").stat().st_mode) & (stat.S_ISVTX | stat.S_IWOTH) == 0


def test_ownership_is_not_taken_from_the_archive(tmp_path, stdlib_filter):
    member = _member("f", payload=b"x")
    member[0].uid, member[0].gid, member[0].uname, member[0].gname = 12345, 12345, "nobody", "nogroup"
    t = tmp_path / "t"
    safe_extract(_tar(tmp_path / "a.tar", [member]), t)
    st = (t / "f").stat()
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
