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
    The walk is only sound while it knows exactly which paths are links on disk, so the
    members whose outcome on disk differs from what they say are refused as well: a link or
    file over a directory (tarfile cannot unlink a directory and falls back to copying the
    link's target there), and a hard link to anything but an earlier file of the archive
    (tarfile would copy a symlink or directory in its place). A file where a folder is
    needed is refused too, because tarfile would stop there half-way through.
    """
    links = {}      # resolved location of each symlink seen so far -> its link text
    dirs = {()}     # resolved locations that are directories once the members so far are out
    plain = set()   # resolved locations of the files (and hard links) so far
    files = {}      # normalised member name -> whether its latest member is a file or hard link

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

    def not_over_a_directory(member, where):
        path = os.path.join(target, *where)
        if where in dirs or (os.path.isdir(path) and not os.path.islink(path)):
            raise UnsafeArchiveError(
                f"archive member {member.name!r} is not a directory but would be written "
                f"where the directory {path} is; refusing to extract the archive")

    def not_through_a_file(member, where):
        for k in range(1, len(where) + 1):
            if where[:k] in plain:
                raise UnsafeArchiveError(
                    f"archive member {member.name!r} needs a folder where the archive put the "
                    f"file {os.path.join(target, *where[:k])}; refusing to extract the archive")

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
        if not m.issym():
            # tarfile writes files and directories, and a hard link whose path is taken,
            # *through* a link already at their path.
            where = resolve(m, name.parts, "would be written")
        # tarfile creates the folders above every member; it does not follow a symlink
        # member's own path, only the folders above it.
        above = resolve(m, name.parts[:-1], "lies")
        not_through_a_file(m, above)
        dirs.update(above[:k] for k in range(len(above) + 1))
        if (m.issym() or m.islnk()) and PurePosixPath(m.linkname).is_absolute():
            raise UnsafeArchiveError(
                f"archive member {m.name!r} is a {'symlink' if m.issym() else 'hard link'} to "
                f"{m.linkname!r} outside the target folder; refusing to extract the archive")
        if m.islnk():
            # Named from the top of the archive, and followed if it is a symlink.
            resolve(m, PurePosixPath(m.linkname).parts, f"is a hard link to {m.linkname!r}, which is")
            if not files.get(os.path.normpath(m.linkname)):
                raise UnsafeArchiveError(
                    f"archive member {m.name!r} is a hard link to {m.linkname!r}, which is not "
                    f"a file earlier in the archive; refusing to extract the archive")
        if m.issym():
            where = above + (name.parts[-1],)
            not_over_a_directory(m, where)
            # read from the link's folder; it replaces whatever was at its own path
            resolve(m, above + PurePosixPath(m.linkname).parts,
                    f"is a symlink to {m.linkname!r}, which is")
            links[where] = m.linkname
        elif m.isdir():
            not_through_a_file(m, where)
            dirs.add(where)
        else:
            not_through_a_file(m, where[:-1])
            not_over_a_directory(m, where)
            plain.add(where)
        files[os.path.normpath(m.name)] = m.isfile() or m.islnk()


def safe_extract(archive, target):
    """Extract the tar ``archive`` into the folder ``target`` after checking every member.

    Members with absolute paths, ``..`` components, links pointing outside ``target``
    (followed through the links that earlier members create, as extraction would), devices
    and FIFOs, and members tarfile could not place as the archive says (a link or file over a
    directory, a file where a folder is needed, a hard link to anything but an earlier file)
    make the whole archive be refused (``UnsafeArchiveError``) before any file is
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
