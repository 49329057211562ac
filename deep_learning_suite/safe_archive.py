"""Extract a downloaded tar archive without letting any member land outside its folder.

A dataset archive comes from the network: a hostile one could hold ``../../.bashrc``, an
absolute path, a device, or links that lead out of the target. Dataset archives hold files
and folders, so that is all this admits. Symlinks and hard links are refused outright: where
a link leads depends on the links extracted before it (``c -> .``, ``a -> c/..``, then
``a/x``), on links an earlier run left in the target, and on the filesystem (names that
differ only in case are one file on macOS and Windows; when tarfile cannot make a link it
quietly copies the link's target instead). A check made before extraction that followed
links was found to disagree with the disk in each of those ways, and some of the
disagreements let a member out.

Without links in the archive, each member's place is fixed by its name and by the disk as it
is before extraction, so each is checked on its own: a relative name without ``..``, inside
the target once links already on disk are followed, a file or a folder, not over a folder or
under a file, and a name a filesystem can hold. One bad member refuses the whole archive
(``UnsafeArchiveError``) before anything is written. The standard library's
``filter="data"`` then checks again where Python has it; where it does not, the same modes
are applied here.
"""

import os
import tarfile
from pathlib import PurePosixPath


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or cannot be written."""


# The longest file or folder name the common filesystems hold (ext4, APFS, NTFS: 255).
MAX_NAME_BYTES = 255


def _inside(base, path):
    base = os.path.realpath(base)
    return os.path.commonpath([base, os.path.realpath(path)]) == base


def _refuse(member, why):
    raise UnsafeArchiveError(f"archive member {member.name!r} {why}; refusing to extract the archive")


def _check_members(tar, target):
    """Refuse the whole archive before writing anything if one member is unsafe or unplaceable."""
    dirs = {()}     # names (as component tuples) that are folders once the members so far are out
    files = set()   # names of the files so far

    for m in tar.getmembers():
        name = PurePosixPath(m.name)
        if name.is_absolute() or m.name.startswith(("/", "\\")) or ".." in name.parts \
                or (len(m.name) > 1 and m.name[1] == ":"):
            _refuse(m, "has an absolute path or '..'")
        if "\0" in m.name:
            _refuse(m, "has a NUL character in its name")
        # realpath: a link an earlier run left in the target is followed, as the kernel will.
        path = os.path.join(target, *name.parts)
        if not _inside(target, path):
            _refuse(m, f"would land outside the target folder {target}")
        if not name.parts and not m.isdir():
            # "." is the target folder itself: a directory there is a no-op, but a link or
            # a file would replace the folder.
            _refuse(m, "is not a directory but names the target folder itself")
        if m.issym() or m.islnk():
            _refuse(m, f"is a {'symlink' if m.issym() else 'hard link'} to {m.linkname!r}; a "
                       f"dataset archive holds only files and folders, and where a link leads "
                       f"cannot be checked before extraction")
        if not (m.isfile() or m.isdir()):
            _refuse(m, "is a device, FIFO or other special file")
        long = [p for p in name.parts if len(os.fsencode(p)) > MAX_NAME_BYTES]
        if long:
            _refuse(m, f"has a name part of {len(os.fsencode(long[0]))} bytes, longer than "
                       f"filesystems hold ({MAX_NAME_BYTES})")
        parts = name.parts
        # tarfile makes the folders above every member, and a folder member itself.
        folders = parts if m.isdir() else parts[:-1]
        for k in range(1, len(folders) + 1):
            above = os.path.join(target, *folders[:k])
            if folders[:k] in files or (os.path.lexists(above) and not os.path.isdir(above)):
                _refuse(m, f"needs a folder where there is a file, {above}")
        if m.isdir():
            dirs.update(parts[:k] for k in range(len(parts) + 1))
            continue
        last = m.name.rstrip("/").rsplit("/", 1)[-1]
        if m.name.endswith("/") or last in ("", "."):
            _refuse(m, "is a file but its name ends in a folder ('/' or '.')")
        if parts in dirs or os.path.isdir(path):     # a link there is written through
            _refuse(m, f"is a file but would be written where the folder {path} is")
        dirs.update(parts[:k] for k in range(len(parts)))
        files.add(parts)


def _data_modes(member):
    """What ``filter="data"`` does to a file or folder, for Pythons that lack it."""
    if member.isdir():
        member.mode = 0o755
    else:
        mode = member.mode & 0o755            # no setuid/setgid/sticky, no group/other write
        if not mode & 0o100:
            mode &= ~0o111
        member.mode = mode | 0o600            # the owner can always read and write it
    # Ownership is not taken from the archive: tarfile applies uid/gid only when run as root.
    member.uid, member.gid = getattr(os, "geteuid", lambda: 0)(), getattr(os, "getegid", lambda: 0)()
    member.uname = member.gname = ""
    return member


def safe_extract(archive, target):
    """Extract the tar ``archive`` into the folder ``target`` after checking every member.

    Only files and folders are admitted. Members with absolute paths, ``..`` components or
    paths that lead out of ``target`` through links already there, symlinks, hard links,
    devices and FIFOs, and members tarfile could not place as the archive says (a file over
    a folder, a file where a folder is needed, a name part over 255 bytes) make the whole
    archive be refused (``UnsafeArchiveError``) before any file is written. Files get the
    modes of ``filter="data"``: no setuid, setgid or group/other write, readable and
    writable by their owner; ownership is not taken from the archive.
    """
    target = str(target)
    os.makedirs(target, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        _check_members(tar, target)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")   # the stdlib's own checks, belt and braces
        else:   # Python before 3.10.12 / 3.11.4
            tar.extractall(target, members=[_data_modes(m) for m in tar.getmembers()])
