"""Writing files whole or not at all, through new files that nobody can plant a link at; reading
only regular files; one training run in a folder at a time; and the one check of whether a
folder can be written. Standard library only."""

import contextlib
import errno
import glob
import io
import itertools
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from pathlib import Path

from .console import HALF_WRITTEN, readable, stop

HERE = Path(__file__).resolve().parent.parent  # the lesson's folder

# Why a file cannot be written: no permission, or a read-only disk (a read-only clone).
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
# A full disk, or a full quota: the folder's fault, never the data's or the network's.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows, where links need rights to make


def folder_fault(error):
    """Whether an OSError is the folder's: it cannot be written, a file stands in its place,
    or its disk is full."""
    return getattr(error, "errno", None) in (*NOT_WRITABLE, *DISK_FULL, errno.ENOTDIR)


def new_partial_file(path):
    """(partial, fd): a new, empty file beside `path`, open for writing, under a name nobody can
    guess. O_EXCL creates it or fails, and never follows a link planted at the name, so that in
    a folder others may write, nobody can make this process write into a file of theirs
    choosing. The process id in the name tells whose it is (remove_leftovers)."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW | getattr(os, "O_BINARY", 0)
    while True:
        partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.partial")
        try:
            return partial, os.open(partial, flags, 0o666)  # the umask decides its mode
        except FileExistsError:  # planted, or a rare draw of the same name: draw again
            continue


@contextlib.contextmanager
def writing(path):
    """A new file to write `path` through (see new_partial_file), open in binary, its .name the
    partial file's path. Renamed into place when the block ends, and removed instead if the block
    fails, or by a quiet Ctrl-C, which exits at once. A link at `path` itself is replaced, never
    followed."""
    partial, fd = new_partial_file(path)
    HALF_WRITTEN.add(partial)
    try:
        with open(str(partial), "wb", opener=lambda *_: fd) as target:
            yield target
            target.flush()
            # The partial file must still be the one written: in a folder others may write, a
            # link put in its place would otherwise be renamed into place.
            now = os.lstat(partial)
            if (now.st_dev, now.st_ino) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                raise OSError(errno.EEXIST, "someone replaced the file being written", partial)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(OSError):  # gone already once renamed into place
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
    """Remove the partial files of `path` that this user's runs killed mid-write left (kill -9
    allows no clean-up); those of runs still writing are theirs, and what others put there is
    left alone."""
    prefix = f".{Path(path).name}."
    for partial in Path(path).parent.glob(f"{glob.escape(prefix)}*.partial"):
        pid = partial.name[len(prefix):].split(".")[0]
        with contextlib.suppress(OSError):
            found = os.lstat(partial)
            mine = found.st_uid == os.getuid() if hasattr(os, "getuid") else True  # Windows
            if pid.isdigit() and not alive(int(pid)) and stat.S_ISREG(found.st_mode) and mine:
                partial.unlink()


def why_not_saved(error):
    """Why a file could not be saved, in a few words and what to do."""
    number = getattr(error, "errno", None)
    if number in DISK_FULL or "unexpected pos" in str(error):  # torch's words for a full disk
        return ("No space left on device. Make room, or choose another folder with --out-dir")
    blocker = in_the_way(Path(error.filename).parent) if getattr(error, "filename", None) \
        else None
    reason = (in_the_way_line(blocker, "") if blocker is not None else
              getattr(error, "strerror", None) or str(error).splitlines()[0])
    return f"{reason}. Choose another folder with --out-dir"


def save_file(path, write):
    """Write a file whole or not at all, through write(file), its folder made again if it was
    removed meanwhile; say so, rather than fail, when it cannot be written."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        with writing(path) as target:
            write(target)
        return True
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        print(f"Warning: could not save {readable(path)} ({why_not_saved(error)}).")
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


class NotARegularFile(OSError):
    """What open_regular finds instead of a regular file, in words: "a folder", "a pipe", …"""


def kind_of(mode):
    return ("a folder" if stat.S_ISDIR(mode) else "a pipe (FIFO)" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def open_regular(path):
    """`path` open for reading in binary, if it is a regular file; else NotARegularFile naming
    what it is. O_NONBLOCK lets a pipe open at once, to be told apart rather than waited on."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, kind_of(mode), str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return io.open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def in_the_way(folder):
    """The first of `folder` and the folders above it that stands there as something else (a
    file, a pipe), so that the folder cannot be made; None where nothing is in the way."""
    for place in [Path(folder), *Path(folder).parents]:
        found = what_is_at(place)
        if found != "nothing":
            return place if found in ("file", "other") else None
    return None


def in_the_way_line(blocker, folder):
    """What is in the folder's way, in words."""
    if Path(blocker) == Path(folder):
        return "it is a file, not a folder"
    return f"{readable(blocker)} is a file, not a folder"


def make_folder(folder):
    """Make `folder` if missing; where a file stands at its name or above it, NotADirectoryError
    with the file named in its strerror."""
    blocker = in_the_way(folder)
    if blocker is not None:
        raise NotADirectoryError(errno.ENOTDIR, in_the_way_line(blocker, folder), str(folder))
    Path(folder).mkdir(parents=True, exist_ok=True)


def made_folder(folder, option):
    """`folder`, made if missing; where a file stands at its name or above it, a stop in one
    line that names the file and the option (--out-dir, --data-dir) that chooses another."""
    try:
        make_folder(folder)
    except NotADirectoryError as error:
        stop(f"cannot make the folder {readable(folder)}: {error.strerror}. Move the file away, "
             f"or choose another folder with {option}.")
    return Path(folder)


def why_not_writable(folder):
    """None if files can be written in `folder` (made if missing), else the reason in a few words.
    It writes and removes a file, since permissions, read-only disks and a file in the folder's
    place all show up that way, and os.access misses some of them."""
    blocker = in_the_way(folder)
    if blocker is not None:
        return in_the_way_line(blocker, folder)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return None
    except OSError as error:
        return error.strerror or str(error)


def new_folder(parent, name):
    """A folder made now under parent, named `name` or, where that is taken, `name-2`, `name-3`
    …: mkdir never follows a link planted at the name. Others may not write in it, so that
    nobody can plant a link at the names a library (TensorBoard) writes in it."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        folder = Path(parent) / (name if number == 1 else f"{name}-{number}")
        try:
            os.mkdir(folder, 0o755)
            return folder
        except FileExistsError:
            continue


LOCK_NAME = ".mnistlab-training.lock"


@contextlib.contextmanager
def training_alone(folder):
    """While the block runs, no other run trains in `folder`: a second one stops in one line that
    names this process. The operating system lets go of the lock when the process ends, however
    it ends. Where the folder cannot be written, nothing there can be spoilt, and no lock is
    taken; nor on systems without flock (Windows). Where the file system has no locks (NFS
    without its lock daemon), the note the lock file holds decides, with a word that says so."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock = Path(folder) / LOCK_NAME
    fd = open_lock(lock)
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy(holder_of(fd), folder)
        except OSError as error:
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            without_locks(holder_of(fd), lock, error)
        with contextlib.suppress(OSError):  # a lock file of another user's may be read-only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}, started "
                          f"{time.strftime('%H:%M:%S')},".encode(), 0)
        yield
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # and with it the lock


def lock_can_be_taken(folder):
    """Stop now, before the run writes anything, where the folder's lock could never be taken
    (another user's lock that you may not open, a link planted at its name)."""
    fd = open_lock(Path(folder) / LOCK_NAME)
    if fd is not None:
        os.close(fd)


def holder_of(fd):
    """The note a training run left in the lock file: "process 123 on node7, started …", or ""."""
    return os.pread(fd, 300, 0).decode("utf-8", "replace").strip()


def busy(holder, folder):
    stop(f"{holder or 'another run'} is training in {readable(folder)} now, and two runs in one "
         f"folder would spoil each other's training state. Wait until it ends, or give this run "
         f"a folder of its own with --out-dir (MNISTLAB_OUT_DIR).")


def without_locks(holder, lock, error):
    """On a file system that cannot lock (ENOLCK): stop where the lock file's note names a run
    that may be training; else say that the note alone keeps runs apart, and go on."""
    why = error.strerror or str(error)
    named = re.match(r"process (\d+) on ([^,\s]+),", holder)
    here = named and named[2] == socket.gethostname()
    if named and (not here or alive(int(named[1]))):
        where = "" if here else (f" It runs on another machine, where this one cannot see it: "
                                 f"if no run is training there, delete {readable(lock)}.")
        stop(f"{holder} may be training in {readable(lock.parent)} now: this file system cannot "
             f"lock files ({why}), so the lesson goes by the note the run "
             f"left in {readable(lock)}, and two runs in one folder would spoil each other's "
             f"training state.{where} Or give this run a folder of its own with --out-dir.")
    print(f"Note: the file system of {readable(lock.parent)} cannot lock files ({why}; NFS "
          f"without its lock daemon, say). The lesson goes by the note it leaves in "
          f"{readable(lock)}: start no second run in this folder while this one trains, or give "
          f"each a folder of its own on a local disk.")


def open_lock(lock):
    """The lock file's descriptor, made if missing; None where the folder cannot be written. A
    link planted at its name is refused, never followed."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | NO_FOLLOW, 0o666)
    except PermissionError:
        try:
            fd = os.open(lock, os.O_RDONLY | NO_FOLLOW)  # another user's lock: flock needs no more
        except PermissionError:
            if what_is_at(lock) != "file":
                return None  # a folder you may not write: nothing of yours, or theirs, to spoil
            stop(f"{readable(lock)}, the lock of another user's runs in {readable(lock.parent)}, "
                 f"cannot be opened by you (permission denied), so this run cannot tell whether "
                 f"theirs is training there now. Ask its owner (ls -l shows who) to make it "
                 f"readable (chmod a+r), or give this run a folder of its own with --out-dir.")
        except OSError:
            return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            stop(f"{readable(lock)} is a link, not the lesson's lock file: someone put it there. "
                 f"Remove it (ls -l shows who made it), or choose another folder with --out-dir.")
        return None  # a read-only or missing folder: nothing to keep apart
    found = os.fstat(fd)
    if found.st_uid == os.geteuid() and stat.S_ISREG(found.st_mode):
        # Readable by all, writable by the group, whatever the umask: in a folder a group
        # shares, the others' runs open it to wait their turn.
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o664)
    if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:  # a hard link: another's file
        os.close(fd)
        what = "a file of other names too" if stat.S_ISREG(found.st_mode) else kind_of(
            found.st_mode)
        stop(f"{readable(lock)} is not the lesson's lock file (it is {what}): someone put it "
             f"there. Remove it, or choose another folder with --out-dir.")
    return fd
