"""``safe_extract`` on archives the tests build themselves: what it must refuse before writing
anything, and the harmless layouts (links that stay inside, a target reached through a
symlink) it must still extract. The CIFAR-10 download path is covered in test_data.py."""

import os
import re
import stat
import tarfile

import pytest

from deep_learning_suite.safe_archive import UnsafeArchiveError, safe_extract

from .test_data import _add, _member

S, L, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for member in members:
            _add(tar, member)
    return path


# Each archive starts with a harmless file, so "nothing written" shows the refusal came first.
REFUSED = {
    # ".." is refused in a name even where it would stay inside (as the docstring says).
    "'..' staying inside": [_member("a", DIR), _member("a/../b")],
    # Windows-absolute names are refused on every system, so an archive is judged the same
    # everywhere.
    "backslash-absolute": [_member("\\evil")],
    "drive letter": [_member("C:evil")],
    "bare drive": [_member("C:")],
    "FIFO": [_member("p", tarfile.FIFOTYPE)],
    "block device": [_member("b", tarfile.BLKTYPE)],
    # No member goes through it, but the link itself points out of the target.
    "relative symlink out, unused": [_member("d", DIR), _member("d/out", S, "../../outside")],
    # A hard link's target is named from the top of the archive, not from its folder.
    "hard link ../f from a folder": [_member("d", DIR), _member("d/h", L, "../f")],
    # c/up is really d/up, so d/up/.. is the target and e -> d/up/.. is its parent.
    "link placed through a link": [_member("d", DIR), _member("c", S, "d"), _member("c/up", S, ".."),
                                   _member("e", S, "d/up/.."), _member("e/evil")],
    # tarfile cannot unlink the directory a, so it copies d/e there and a stays a real
    # directory: a/../.. is then the target's parent, not the target as the link a -> d/e
    # would make it.
    "symlink over a directory": [_member("d", DIR), _member("d/e", DIR), _member("a", DIR),
                                 _member("a", S, "d/e"), _member("x", S, "a/../.."), _member("x/evil")],
    # tarfile copies the symlink d/c -> .. to d/h (os.link cannot link to a directory), so
    # d/h is the target and d/h/.. its parent, where a plain file d/h would make it d.
    "hard link to a symlink": [_member("d", DIR), _member("d/c", S, ".."), _member("d/h", L, "d/c"),
                               _member("z", S, "d/h/.."), _member("z/evil")],
    # c/../outside/x names the member outside/x, but on disk it is the target's sibling.
    "hard link out through a link, named like a member": [_member("outside/x"), _member("c", S, "."),
                                                          _member("h", L, "c/../outside/x")],
}


@pytest.mark.parametrize("stdlib_filter", [True, False], ids=["with the stdlib filter", "alone"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, monkeypatch, case, stdlib_filter):
    # "alone" is Python before 3.10.12 / 3.11.4, which has no filter="data" to fall back on.
    if not stdlib_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    (tmp_path / "outside").mkdir()
    archive = _tar(tmp_path / "a.tar", [_member("f", payload=b"written first")] + REFUSED[case])
    t = tmp_path / "t"
    with pytest.raises(UnsafeArchiveError, match="refusing to extract the archive"):
        safe_extract(archive, t)
    assert os.listdir(t) == [] and os.listdir(tmp_path / "outside") == []
    assert sorted(os.listdir(tmp_path)) == ["a.tar", "outside", "t"]


# Archives that would stop tarfile half-way through, with what the refusal must say.
INCONSISTENT = {
    "hard link to a directory": ([_member("d", DIR), _member("h", L, "d")],
                                 "'h' is a hard link to 'd', which is not a file earlier"),
    "hard link to a missing name": ([_member("h", L, "nope")], "'h' is a hard link to 'nope', which is not a file"),
    "hard link to a later file": ([_member("h", L, "g"), _member("g")], "'h' is a hard link to 'g', which is not"),
    "hard link to itself": ([_member("h", L, "h")], "'h' is a hard link to 'h', which is not"),
    "hard link to a replaced file": ([_member("g"), _member("g", S, "f"), _member("h", L, "g")],
                                     "'h' is a hard link to 'g', which is not"),
    "hard link through a symlink to the target": ([_member("c", S, "."), _member("c", L, "f")],
                                                  "'c' is not a directory but would be written where the directory"),
    "file over a directory": ([_member("d", DIR), _member("d")], "'d' is not a directory but would be written"),
    "file over an implied directory": ([_member("d/x"), _member("d")], "'d' is not a directory"),
    "file written through a link to a directory": ([_member("d", DIR), _member("c", S, "d"), _member("c")],
                                                   "'c' is not a directory"),
    "directory over a file": ([_member("g"), _member("g", DIR)], "'g' needs a folder where the archive put the file"),
    "file under a file": ([_member("g"), _member("g/x")], "'g/x' needs a folder where the archive put the file"),
    "file through a link under a file": ([_member("g"), _member("c", S, "g/x"), _member("c")],
                                         "'c' needs a folder where the archive put the file"),
    "symlink under a file": ([_member("g"), _member("g/c", S, ".")], "'g/c' needs a folder where"),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
def test_an_archive_tarfile_would_stop_in_is_refused_before_anything_is_written(tmp_path, case):
    members, message = INCONSISTENT[case]
    archive = _tar(tmp_path / "a.tar", [_member("f", payload=b"written first")] + members)
    t = tmp_path / "t"
    with pytest.raises(UnsafeArchiveError, match=re.escape(message) + ".*refusing to extract the archive"):
        safe_extract(archive, t)
    assert os.listdir(t) == []


@pytest.mark.parametrize("kind", [S, L], ids=["symlink", "hard link"])
def test_an_absolute_link_is_refused_even_into_the_target(tmp_path, kind):
    # It would point elsewhere as soon as the folder is moved.
    t = tmp_path / "t"
    archive = _tar(tmp_path / "a.tar", [_member("f", payload=b"written first"), _member("l", kind, str(t / "f"))])
    with pytest.raises(UnsafeArchiveError, match=f"'l' is a {'symlink' if kind == S else 'hard link'} to "
                                                 f".* outside the target folder; refusing"):
        safe_extract(archive, t)
    assert os.listdir(t) == []


def test_a_symlink_over_a_directory_left_by_an_earlier_run_is_refused(tmp_path):
    # tarfile cannot unlink the directory d, so d would not become the link the checks follow.
    t = tmp_path / "t"
    (t / "d").mkdir(parents=True)
    archive = _tar(tmp_path / "a.tar", [_member("f", payload=b"written first"), _member("d", S, ".")])
    with pytest.raises(UnsafeArchiveError, match="'d' is not a directory but would be written where the directory"):
        safe_extract(archive, t)
    assert os.listdir(t) == ["d"] and os.listdir(t / "d") == []


def test_hard_links_to_earlier_files_are_extracted(tmp_path):
    # A hard link names a file from the top of the archive ("./f" and "f" are one name),
    # possibly through another hard link, or a file written through a symlink.
    archive = _tar(tmp_path / "a.tar", [_member("./f", payload=b"data"), _member("d", DIR),
                                        _member("d/h", L, "f"), _member("h2", L, "d/h"),
                                        _member("c", S, "d"), _member("c/g", payload=b"via c"),
                                        _member("h3", L, "c/g")])
    t = tmp_path / "t"
    safe_extract(archive, t)
    for name, data in [("f", b"data"), ("d/h", b"data"), ("h2", b"data"), ("d/g", b"via c"), ("h3", b"via c")]:
        assert (t / name).read_bytes() == data and not (t / name).is_symlink()
    assert (t / "h2").stat().st_ino == (t / "f").stat().st_ino


def test_a_symlink_may_replace_a_file_and_a_file_may_replace_a_file(tmp_path):
    archive = _tar(tmp_path / "a.tar", [_member("d", DIR), _member("g", payload=b"old"),
                                        _member("g", payload=b"new"), _member("f", payload=b"file"),
                                        _member("f", S, "d"), _member("f/x", payload=b"in d")])
    t = tmp_path / "t"
    safe_extract(archive, t)
    assert (t / "g").read_bytes() == b"new"
    assert os.readlink(t / "f") == "d" and (t / "d" / "x").read_bytes() == b"in d"


def test_a_link_up_to_the_target_itself_is_extracted(tmp_path):
    # d/up -> .. is the target folder, which is inside: nothing may be refused.
    archive = _tar(tmp_path / "a.tar", [_member("d", DIR), _member("d/up", S, ".."),
                                        _member("f", payload=b"top"),
                                        _member("d/up/g", payload=b"through the link")])
    t = tmp_path / "t"
    safe_extract(archive, t)
    assert (t / "d" / "up" / "f").read_bytes() == b"top"
    assert (t / "g").read_bytes() == b"through the link"


def test_a_target_reached_through_a_symlink_is_extracted(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    archive = _tar(tmp_path / "a.tar", [_member("d", DIR), _member("d/f", payload=b"data"),
                                        _member("l", S, "d/f")])
    safe_extract(archive, tmp_path / "alias")
    assert (tmp_path / "real" / "d" / "f").read_bytes() == b"data"
    assert (tmp_path / "real" / "l").read_bytes() == b"data"


@pytest.mark.parametrize("outside", ["outside", "t2"], ids=["elsewhere", "sibling sharing the prefix"])
def test_a_link_already_on_disk_that_leads_out_is_refused_before_anything_is_written(tmp_path, outside):
    # The archive alone is harmless; the link left in the target by an earlier run is not.
    # "t2" next to the target "t" has the target's path as a string prefix.
    t, out = tmp_path / "t", tmp_path / outside
    t.mkdir()
    out.mkdir()
    (t / "x").symlink_to(os.path.join("..", outside))
    archive = _tar(tmp_path / "a.tar", [_member("first", payload=b"written first"),
                                        _member("x/evil")])
    with pytest.raises(UnsafeArchiveError, match="'x/evil' .*outside"):
        safe_extract(archive, t)
    assert sorted(os.listdir(t)) == ["x"] and os.listdir(out) == []


def _chain(n):
    """d/, then l1 -> d and l{k} -> l{k-1} up to l{n}, then a file written through l{n}."""
    links = [_member("l1", S, "d")] + [_member(f"l{k}", S, f"l{k - 1}") for k in range(2, n + 1)]
    return [_member("d", DIR)] + links + [_member(f"l{n}/f", payload=b"end of chain")]


def test_a_chain_of_40_links_the_kernels_limit_is_extracted(tmp_path):
    t = tmp_path / "t"
    safe_extract(_tar(tmp_path / "a.tar", _chain(40)), t)
    assert (t / "d" / "f").read_bytes() == b"end of chain"


def test_a_chain_of_41_links_is_refused_before_anything_is_written(tmp_path):
    # Linux gives up after 40 links in one path (ELOOP), so writing l41/f would fail
    # half-way through the extraction; it is refused up front instead.
    t = tmp_path / "t"
    with pytest.raises(UnsafeArchiveError, match="'l41/f' would be written outside .*or in a loop"):
        safe_extract(_tar(tmp_path / "a.tar", _chain(41)), t)
    assert os.listdir(t) == []


def test_extracted_files_get_safe_permissions(tmp_path):
    # An archive cannot hand out setuid or world-writable files, nor files their owner cannot
    # read (the standard library's "data" filter, which safe_extract applies after its checks).
    setuid, unreadable = _member("setuid", payload=b"x"), _member("unreadable", payload=b"y")
    setuid[0].mode, unreadable[0].mode = 0o4777, 0o000
    t = tmp_path / "t"
    safe_extract(_tar(tmp_path / "a.tar", [setuid, unreadable]), t)
    assert stat.S_IMODE((t / "setuid").stat().st_mode) & (stat.S_ISUID | stat.S_IWGRP | stat.S_IWOTH) == 0
    assert stat.S_IMODE((t / "unreadable").stat().st_mode) & 0o600 == 0o600
