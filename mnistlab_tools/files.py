"""Writing files whole or not at all, and the one check of whether a folder can be written.
Standard library only."""

import contextlib
import errno
import glob
import os
import stat
import tempfile
from pathlib import Path

from .console import HALF_WRITTEN, readable

HERE = Path(__file__).resolve().parent.parent  # the lesson's folder

# Why a file cannot be written: no permission, or a read-only disk (a read-only clone).
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def partial_path(path):
    """Where to write `path` until it is whole: a hidden name of this process's own, so that two
    runs writing the same file never write into each other's."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


@contextlib.contextmanager
def writing(path):
    """The partial file to write `path` through, removed afterwards unless renamed into place,
    and by a quiet Ctrl-C too, which exits at once."""
    partial = partial_path(path)
    HALF_WRITTEN.add(partial)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)
        HALF_WRITTEN.discard(partial)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(path):
    """Remove the partial files of `path` that runs killed mid-write left (kill -9 allows no
    clean-up); those of runs still writing are theirs."""
    prefix = f".{Path(path).name}."
    for partial in Path(path).parent.glob(f"{glob.escape(prefix)}*.partial"):
        pid = partial.name[len(prefix):-len(".partial")]
        if pid.isdigit() and not alive(int(pid)):
            partial.unlink(missing_ok=True)


def save_file(path, write):
    """Write a file whole or not at all; say so, rather than fail, when it cannot be written."""
    try:
        remove_leftovers(path)
        with writing(path) as partial:
            write(partial)
            os.replace(partial, path)
        return True
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        print(f"Warning: could not save {readable(path)} ({reason}). Make room, or choose another "
              f"folder with --out-dir.")
        return False


def what_is_at(path):
    """What a learner's path names: "file", "folder", "nothing", "other" (a pipe or a device,
    which could block whoever reads it), or, where that cannot be told, the reason (a name too
    long, a folder you may not enter), which pathlib would raise instead."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "nothing"
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        return f"unreachable ({getattr(error, 'strerror', None) or error})"
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def why_not_writable(folder):
    """None if files can be written in `folder` (made if missing), else the reason in a few words.
    It writes and removes a file, since permissions, read-only disks and a file in the folder's
    place all show up that way, and os.access misses some of them."""
    if what_is_at(folder) in ("file", "other"):
        return "it is a file, not a folder"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return None
    except OSError as error:
        return error.strerror or str(error)
