"""Extract a downloaded tar archive without letting any member land outside its folder.

A dataset archive comes from the network: a hostile one could hold ``../../.bashrc``, an
absolute path, a device, or links that lead out of the target, even in chains that are
harmless one link at a time (``c -> .``, ``a -> c/..``, then ``a/x``). Every member is
checked, following the links earlier members create as extraction would, and the whole
archive is refused (``UnsafeArchiveError``) before anything is written; the standard
library's ``filter="data"`` then checks again where Python has it.
"""

import os
import tarfile
from pathlib import PurePosixPath


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder."""


def _inside(base, path):
    base = os.path.realpath(base)
    return os.path.commonpath([base, os.path.realpath(path)]) == base


# How many symlinks one path may go through before it counts as a loop (Linux's limit).
_MAX_SYMLINK_HOPS = 40


class _EscapesTarget(Exception):
    """Internal: a path, followed through the archive's own symlinks, leaves the target."""


def _resolve_in_archive(parts, links):
    """Follow ``parts`` (components relative to the target) through the archive's symlinks.

    ``links`` maps the resolved location of every symlink extracted so far (a tuple of
    components) to its link text. The walk is ``realpath``'s, done on the archive instead
    of the disk: before extraction none of the links exist yet, so ``os.path.realpath``
    cannot see that ``c -> .`` followed by ``a -> c/..`` makes ``a/x`` land outside.

    Returns the resolved components; raises ``_EscapesTarget`` when the path leaves the
    target (``..`` above it, an absolute link) or goes through too many links (a loop).
    """
    hops = 0
    resolved = []
    pending = list(parts)[::-1]      # a stack: the next component is at the end
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise _EscapesTarget
            resolved.pop()
            continue
        resolved.append(part)
        link = links.get(tuple(resolved))
        if link is not None:
            hops += 1
            if hops > _MAX_SYMLINK_HOPS or PurePosixPath(link).is_absolute():
                raise _EscapesTarget
            # A relative link is read from the folder that holds it.
            resolved.pop()
            pending.extend(reversed(PurePosixPath(link).parts))
    return resolved


def _check_members(tar, target):
    """Refuse the whole archive before writing anything if one member could escape ``target``.

    Members are checked in extraction order, each path followed through the symlinks that
    earlier members create, so a chain of links that are harmless one by one (``c -> .``,
    ``a -> c/..``, then ``a/x``) is caught here rather than half-way through extraction.
    """
    links = {}   # resolved location of each symlink seen so far -> its link text

    def resolve(member, parts, what):
        try:
            resolved = _resolve_in_archive(parts, links)
        except _EscapesTarget:
            resolved = None
        # realpath as well, for links that already exist on disk inside ``target``.
        if resolved is None or not _inside(target, os.path.join(target, *resolved)):
            raise UnsafeArchiveError(
                f"archive member {member.name!r} {what} outside the target folder {target} "
                f"(or in a loop) once the archive's own links are followed; refusing to "
                f"extract the archive")
        return tuple(resolved)

    for m in tar.getmembers():
        name = PurePosixPath(m.name)
        if name.is_absolute() or m.name.startswith(("/", "\\")) or ".." in name.parts \
                or (len(m.name) > 1 and m.name[1] == ":"):
            raise UnsafeArchiveError(f"archive member {m.name!r} has an absolute path or '..'; "
                                     f"refusing to extract the archive")
        dest = os.path.join(target, *name.parts)
        if not _inside(target, dest):
            raise UnsafeArchiveError(f"archive member {m.name!r} would land outside {target}")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeArchiveError(f"archive member {m.name!r} is a device or FIFO; "
                                     f"refusing to extract the archive")
        if not name.parts:
            # "." is the target folder itself: a directory there is a no-op, but a link or
            # a file would replace the folder, so no later check could hold.
            if not m.isdir():
                raise UnsafeArchiveError(f"archive member {m.name!r} is not a directory but "
                                         f"names the target folder itself; refusing to "
                                         f"extract the archive")
            continue
        if not (m.issym() or m.islnk()):
            # tarfile writes files and directories *through* a link already at their path.
            resolve(m, name.parts, "would be written")
            continue
        # tarfile replaces a link member's own path rather than following it, so only
        # the folders above it are followed.
        where = resolve(m, name.parts[:-1], "lies") + (name.parts[-1],)
        links.pop(where, None)
        kind = "symlink" if m.issym() else "hard link"
        if PurePosixPath(m.linkname).is_absolute():
            raise UnsafeArchiveError(
                f"archive member {m.name!r} is a {kind} to {m.linkname!r} outside the "
                f"target folder; refusing to extract the archive")
        link = PurePosixPath(m.linkname).parts
        if m.issym():   # read from the link's folder
            resolve(m, where[:-1] + link, f"is a symlink to {m.linkname!r}, which is")
            links[where] = m.linkname
        else:           # named from the top of the archive, and followed if it is a symlink
            resolve(m, link, f"is a hard link to {m.linkname!r}, which is")


def safe_extract(archive, target):
    """Extract the tar ``archive`` into the folder ``target`` after checking every member.

    Members with absolute paths, ``..`` components, links pointing outside ``target``
    (followed through the links that earlier members create, as extraction would), devices
    and FIFOs make the whole archive be refused (``UnsafeArchiveError``) before any file is
    written.
    """
    target = str(target)
    os.makedirs(target, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        _check_members(tar, target)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")   # the stdlib's own checks, belt and braces
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(target)
