"""How the lesson talks to the learner: one plain line when it must stop, paths as typed, and,
for a program run in a terminal, a quiet end on Ctrl-C or a closed pipe; and what another
program (nvidia-smi, Slurm's) answers, within a time limit.

Nothing here changes the importing program until it calls set_up_terminal(): only the lesson and
predict.py do, when run as programs. Standard library only, so that it loads at once.
"""

import codecs
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

IN_NOTEBOOK = "ipykernel" in sys.modules

# The partial files this process is writing: a quiet Ctrl-C removes them before it exits.
HALF_WRITTEN = set()

# What a terminal cannot print, in plain ASCII: the lesson writes →, × and ± in its messages.
# A lesson command as the pages write it, in the environment the quick start makes (conda users
# drop the prefix, as Readme_jupyter.md says).
PYTHON = ".venv/bin/python"
ASCII = {"→": "->", "×": "x", "±": "+/-", "–": "-", "…": "...", "·": ".", "²": "2"}


def answer_of(command, seconds):
    """What `command` prints, or None where it is not installed, fails, or does not answer within
    `seconds` (a hung driver, a busy Slurm controller)."""
    if not shutil.which(command[0]):
        return None
    try:
        answer = subprocess.run(command, capture_output=True, text=True, timeout=seconds)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return answer.stdout.strip() if answer.returncode == 0 else None


def stop(message):
    """End the lesson with one plain line: exit status 2 in a terminal, an error in a kernel."""
    if IN_NOTEBOOK:
        raise SystemExit(message)
    print(f"mnistlab: {message}", file=sys.stderr)
    sys.exit(2)


def printable(text):
    """Text that any stream or figure can show: a name in another encoding than UTF-8 (a photo
    named in Latin-1, say), which Python keeps as escapes, gets � where its bytes do not decode."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def readable(path):
    """A path as a learner would type it, printable: relative to the current folder when inside
    it."""
    try:
        return printable(str(Path(path).resolve().relative_to(Path.cwd())))
    except Exception:  # outside the current folder, a loop of links, a folder that vanished
        return printable(str(path))


def end_at_once(*_):
    """Ctrl-C in a terminal, outside training: one line, exit status 130, at once. It must not
    raise KeyboardInterrupt: raised while PyTorch or matplotlib imports a C++ extension, that
    aborts the process with a C++ error instead."""
    for partial in list(HALF_WRITTEN):
        with contextlib.suppress(OSError):
            os.unlink(partial)
    try:
        sys.stdout.flush()
        print("\nmnistlab: stopped by Ctrl-C.", file=sys.stderr, flush=True)
    except Exception:  # a stream busy in a write may refuse; exit all the same
        pass
    os._exit(130)


def in_ascii(error):
    text = error.object[error.start:error.end]
    return "".join(ASCII.get(character, "?") for character in text), error.end


def end_quietly(kind, error, trace):
    """Ctrl-C at any moment ends the run with one line, and a closed pipe (as in
    `python mnistlab.py | head`) ends it silently; anything else is reported as Python does."""
    if issubclass(kind, KeyboardInterrupt):
        end_at_once()
    if issubclass(kind, BrokenPipeError):
        os._exit(141)  # as a program ended by the closed pipe's signal
    sys.__excepthook__(kind, error, trace)


def set_up_terminal():
    """For the lesson and predict.py run as programs in a terminal, called before their heavy
    imports: Ctrl-C ends in one line, a closed pipe quietly, SIGUSR1 waits for training,
    characters the terminal cannot print come out as ASCII, and figures go to files, since an SSH
    terminal has no screen. In a kernel it does nothing: Jupyter has its own ways for all of
    these."""
    import signal

    if IN_NOTEBOOK:
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, end_at_once)
    if getattr(signal, "SIGUSR1", None) and signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL:
        # A batch job's warning before its time limit stops training (stopping.StopRequest).
        # Outside training it would kill the run, and with it the figures and network it is
        # about to save, well before the limit.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    sys.excepthook = end_quietly
    codecs.register_error("mnistlab_ascii", in_ascii)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="mnistlab_ascii")
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    else:
        os.environ["MPLBACKEND"] = "Agg"  # read by matplotlib when it is first imported


def display(value):
    """A setting's value as the learner would write it: paths as typed, an empty text as ""."""
    if value == "":
        return '""'
    if isinstance(value, Path):
        return readable(value)
    if isinstance(value, list):
        return "[" + ", ".join(display(item) for item in value) + "]"
    return str(value)
