"""What keeps the lesson in mnistlab.py robust, so that the lesson itself can tell its story.

Settings from the parameters cell, the environment and the command line; the device; finding,
downloading and checking the data; writing files whole; showing and saving figures; Ctrl-C;
TensorBoard; checkpoints; and reading photos. Every function takes what it uses as arguments.
This module never imports the lesson.

Run as a script, it copies the lesson's cells marked #@save into mnistlab_saved.py:

    python mnistlab_tools.py export
"""

import os
import signal
import sys

IN_NOTEBOOK = "ipykernel" in sys.modules


def end_at_once(*_):
    """Ctrl-C in a terminal, outside training: one line, exit status 130, at once. It must not
    raise KeyboardInterrupt: raised while PyTorch or matplotlib imports a C++ extension, that
    aborts the process with a C++ error instead."""
    try:
        sys.stdout.flush()
        print("\nmnistlab: stopped by Ctrl-C.", file=sys.stderr, flush=True)
    except Exception:  # a stream busy in a write may refuse; exit all the same
        pass
    os._exit(130)


if not IN_NOTEBOOK and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    # First of all, before the other imports, so that Ctrl-C while they load ends quietly too.
    signal.signal(signal.SIGINT, end_at_once)

import argparse
import ast
import codecs
import contextlib
import errno
import gc
import gzip
import pickle
import shutil
import subprocess
import tempfile
import traceback
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

# What a terminal cannot print, in plain ASCII: the lesson writes →, × and ± in its messages.
ASCII = {"→": "->", "×": "x", "±": "+/-", "–": "-", "…": "...", "·": ".", "²": "2"}


def in_ascii(error):
    text = error.object[error.start:error.end]
    return "".join(ASCII.get(character, "?") for character in text), error.end


def end_quietly(kind, error, trace):
    """In a terminal, Ctrl-C at any moment ends the run with one line, and a closed pipe (as in
    `python mnistlab.py | head`) ends it silently; anything else is reported as Python does."""
    if issubclass(kind, KeyboardInterrupt):
        end_at_once()
    if issubclass(kind, BrokenPipeError):
        os._exit(141)  # as a program ended by the closed pipe's signal
    sys.__excepthook__(kind, error, trace)


if not IN_NOTEBOOK:
    codecs.register_error("mnistlab_ascii", in_ascii)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="mnistlab_ascii")
    sys.excepthook = end_quietly

# The heavy imports come after, so that Ctrl-C while they load ends quietly too.
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision import datasets
from tqdm import tqdm

if not IN_NOTEBOOK:
    matplotlib.use("Agg")  # an SSH terminal has no screen: figures go to files, not windows

HERE = Path(__file__).resolve().parent
SAMPLE_DIR = HERE / "sample"
LESSON = HERE / "mnistlab.py"
SAVED_MODULE = HERE / "mnistlab_saved.py"


def stop(message):
    """End the lesson with one plain line: exit status 2 in a terminal, an error in a kernel."""
    if IN_NOTEBOOK:
        raise SystemExit(message)
    print(f"mnistlab: {message}", file=sys.stderr)
    sys.exit(2)


def readable(path):
    """A path as a learner would type it: relative to the current folder when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# Datasets


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset the lesson can train on: torchvision's class for it, its classes, what it holds."""

    torchvision_class: type
    class_names: list
    items: str  # what the learner calls one image of it

    @property
    def name(self):
        return self.torchvision_class.__name__


DATASETS = {
    "mnist": DatasetInfo(datasets.MNIST, [str(digit) for digit in range(10)], "digits"),
    "fashion": DatasetInfo(datasets.FashionMNIST, datasets.FashionMNIST.classes, "images"),
}

# Why a file cannot be written: no permission, or a read-only disk (a read-only clone).
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
# Each file: the number at its start that says what it holds, how many items, the bytes before them.
IDX_FILES = {
    "train-images-idx3-ubyte": (2051, 60_000, 16),
    "train-labels-idx1-ubyte": (2049, 60_000, 8),
    "t10k-images-idx3-ubyte": (2051, 10_000, 16),
    "t10k-labels-idx1-ubyte": (2049, 10_000, 8),
}


def idx_problem(path, magic, count, header):
    """Why the file at `path` is not the whole dataset file it should be, or None if it is."""
    size = header + count * (28 * 28 if magic == 2051 else 1)
    actual = path.stat().st_size
    try:
        with path.open("rb") as file:
            first_bytes = file.read(8)
    except PermissionError:
        return (f"{path.name} is not readable by you (permission denied): ask its owner "
                f"(ls -l shows who), or copy the files into a folder of yours and name it with "
                f"--data-dir")
    if actual != size:
        return (
            f"{path.name} is damaged or incomplete ({actual:,} bytes; the whole file has {size:,})"
        )
    if first_bytes != magic.to_bytes(4, "big") + count.to_bytes(4, "big"):
        kind = path.parent.parent.name  # the dataset's folder: MNIST or FashionMNIST
        article = "an" if kind == "MNIST" else "a"
        return (f"{path.name} has the right size but is not {article} {kind} file of that kind "
                f"(its first bytes differ)")
    return None


def data_problems(raw_dir):
    """One line for each dataset file in raw_dir that is there but not whole."""
    return [
        problem
        for name, layout in IDX_FILES.items()
        if (raw_dir / name).is_file()
        for problem in [idx_problem(raw_dir / name, *layout)]
        if problem
    ]


def unpack(packed, path, layout):
    """Unpack a .gz into `path` through a partial file, which is renamed only once it checks out."""
    partial = partial_path(path)
    try:
        with gzip.open(packed) as source, partial.open("wb") as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)
        problem = idx_problem(partial, *layout)
        if problem:
            raise ValueError(problem.replace(partial.name, packed.name + " unpacked"))
        os.replace(partial, path)
    except (OSError, EOFError, zlib.error) as error:
        if getattr(error, "errno", None) in NOT_WRITABLE:
            raise  # the folder, not the file, is at fault
        raise ValueError(f"{packed.name} is damaged or incomplete ({error})") from None
    finally:
        partial.unlink(missing_ok=True)


def fetch(url, path):
    """Download `url` to `path`, whole or not at all."""
    partial = partial_path(path)
    try:
        with urllib.request.urlopen(url, timeout=20) as response, partial.open("wb") as target:
            while chunk := response.read(1 << 20):
                target.write(chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def download(raw_dir, mirrors):
    """Fetch and unpack each missing file; a .gz already there (fetched by hand, say) is used."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, layout in IDX_FILES.items():
        path, packed = raw_dir / name, raw_dir / f"{name}.gz"
        if path.is_file():
            continue
        if not packed.is_file():
            errors = []
            for mirror in mirrors:
                try:
                    fetch(mirror + packed.name, packed)
                    break
                except (OSError, ValueError) as error:
                    if getattr(error, "errno", None) in NOT_WRITABLE:
                        raise  # no mirror helps when the folder cannot be written
                    errors.append(f"{mirror}: {getattr(error, 'reason', None) or error}")
            else:
                raise ConnectionError("; ".join(errors))
        unpack(packed, path, layout)


def find_data(info, data_dir, sample, mirror=""):
    """The folder to read the dataset from: data_dir, once its files are there and whole, or the
    sample.

    Missing files are downloaded into data_dir/NAME/raw/. Without a network the lesson goes on with
    the committed sample and says how to fetch the files by hand. A damaged file is never deleted:
    the lesson stops and says which file it is and what to do."""
    if sample:
        return SAMPLE_DIR
    raw_dir = Path(data_dir) / info.name / "raw"
    problems = data_problems(raw_dir)
    if problems:
        damaged = any("not readable by you" not in problem for problem in problems)
        remedy = (" Delete the file to download it again, copy a whole one there, or use --sample."
                  if damaged else "")
        stop(f"{info.name} in {readable(raw_dir)} cannot be used: {'; '.join(problems)}.{remedy}")
    mirrors = [mirror.rstrip("/") + "/"] if mirror else info.torchvision_class.mirrors
    try:
        download(raw_dir, mirrors)
    except ValueError as error:
        stop(
            f"{info.name} in {readable(raw_dir)} cannot be used: {error}. Delete the file to "
            f"download it again, copy a whole one there, or use --sample."
        )
    except OSError as error:
        if error.errno in NOT_WRITABLE:
            print(
                f"Cannot download {info.name}: {readable(error.filename or raw_dir)} cannot be "
                f"written by you ({error.strerror}). Name a folder you can write with --data-dir "
                f"(data_dir in the parameters cell), or one that already holds {info.name}/raw/."
                f"\nGoing on with the small sample in {readable(SAMPLE_DIR)}/: the accuracy will "
                f"be lower than on the full dataset.\n"
            )
            return SAMPLE_DIR
        # No network, a refused connection, a full disk.
        reason = error.strerror or error
        print(
            f"Could not download {info.name} into {readable(raw_dir)} ({reason}).\n"
            f"To use the full dataset, fetch these four files on a machine with internet access\n"
            f"  {'  '.join(name + '.gz' for name in IDX_FILES)}\n"
            f"from {mirrors[0]} and copy them into\n"
            f"  {raw_dir.resolve()}\n"
            f"(or name a folder that holds {info.name}/raw/ with --data-dir).\n"
            f"Going on with the small sample in {readable(SAMPLE_DIR)}/: the accuracy will be "
            f"lower than on the full dataset.\n"
        )
        return SAMPLE_DIR
    return Path(data_dir)


# Settings


class SettingsError(Exception):
    pass


def whole_number(minimum, maximum):
    def read(value):
        text = str(value).strip()
        # isascii: "²" and other digit-like characters pass isdigit() but are no number
        if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or not (
            minimum <= int(text) <= maximum
        ):
            raise ValueError(f"{value!r} is not allowed: use a whole number from {minimum:,} to "
                             f"{maximum:,}")
        return int(text)

    return read


def learning_rate(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    # Adam works in 32-bit floats, which end near 3.4e38; past 1,000 training only ever diverges.
    if isinstance(value, bool) or not 0 < number <= 1000:
        raise ValueError(f"{value!r} is not allowed: use a number above 0 and at most 1000, such "
                         f"as 0.01")
    return number


SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True,
                "0": False, "false": False, "no": False, "off": False}


def switch(value):
    word = str(value).strip().lower()
    if word not in SWITCH_WORDS:
        raise ValueError(f"{value!r} is not allowed: use True or False (1 or 0)")
    return SWITCH_WORDS[word]


def one_of(choices):
    def read(value):
        if value not in choices:
            raise ValueError(f"{value!r} is not allowed: use one of {', '.join(choices)}")
        return value

    return read


def folder(value):
    if not str(value).strip():
        raise ValueError("an empty name is not allowed: name a folder, such as outputs")
    return Path(value).expanduser()


def text(value):
    return str(value).strip()


def photo_paths(value):
    parts = str(value).split(os.pathsep) if isinstance(value, (str, Path)) else list(value)
    paths = [Path(part).expanduser() for part in map(str, parts) if part.strip()]
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is not allowed: it is a folder, not a photo")
        if not path.is_file():
            raise ValueError(f"{str(path)!r} is not allowed: there is no such file")
    return paths


def device_choice(value):
    """auto, or a device as PyTorch names it: cpu, cuda, cuda:1 (a GPU by its index), mps, …"""
    name = str(value).strip().lower()
    if name == "auto":
        return name
    try:
        torch.device(name)
    except RuntimeError:
        raise ValueError(f"{value!r} is not allowed: use auto, cpu, cuda, cuda:N (the GPU of "
                         f"index N) or mps") from None
    return name
# The name in the parameters cell; the option and what it takes (its environment variable is
# MNISTLAB_ and the option's name in capitals); how to read a value; what the setting does.
SETTINGS = [
    ("epochs", "--epochs N", whole_number(1, 10_000), "passes over the training data"),
    ("batch_size", "--batch-size N", whole_number(1, 60_000), "images per training step"),
    ("lr", "--lr X", learning_rate, "peak learning rate of the one-cycle schedule"),
    ("seed", "--seed N", whole_number(0, 2**63 - 1), "random seed: the same seed, the same result"),
    ("channels", "--channels N", whole_number(1, 256), "feature maps of the first convolution"),
    ("augment", "--augment", switch, "shift each batch of training images by up to 2 pixels"),
    ("device_name", "--device NAME", device_choice, "where to train: auto, cpu, cuda, cuda:N or "
     "mps; auto takes the GPU with the most free memory, else the cpu"),
    ("dataset", "--dataset {mnist,fashion}", one_of(tuple(DATASETS)), "mnist for digits, "
     "fashion for clothes"),
    ("data_dir", "--data-dir DIR", folder, "folder of the data, downloaded into it if missing"),
    ("mirror", "--mirror URL", text, "where to download the data from, if not the official one"),
    ("sample", "--sample", switch, "train and test on the small sample in sample/"),
    ("out_dir", "--out-dir DIR", folder, "folder for the figures and the trained network"),
    ("tensorboard", "--tensorboard", switch, "log the training to runs/ in the output folder"),
    ("photos", "--photos", photo_paths, "photos of handwritten digits to read at the end"),
    ("resume", "--resume", switch, "continue the run that was cut short in out_dir, from its "
     "last finished epoch"),
]


def environment_name(option):
    return "MNISTLAB_" + option.lstrip("-").replace("-", "_").upper()


class SettingsParser(argparse.ArgumentParser):
    def error(self, message):
        if "--predict" in message:
            message += (
                ". To read photos with the network saved last time, run: python predict.py PHOTO"
            )
        raise SettingsError(message)


def read_settings(cell, arguments=None, environment=None):
    """The lesson's settings: a command-line option wins over an MNISTLAB_* variable, which wins
    over the value in the parameters cell (`cell`, a dict). Relative paths in the cell are taken
    from the lesson's folder; those typed in a terminal or the environment, from the current
    folder.

    Returns a namespace of the checked values, with `.origins`: where each value that did not come
    from the cell came from. A wrong value raises SettingsError naming where it came from."""
    if arguments is None:
        # A kernel's own command line (-f kernel.json) is not meant for the lesson.
        arguments = [] if IN_NOTEBOOK else sys.argv[1:]
    environment = os.environ if environment is None else environment
    parser = SettingsParser(
        prog="python mnistlab.py",
        allow_abbrev=False,
        description="Train a small CNN on MNIST, then show which digits it confuses. "
        "Each option overrides the lesson's parameters cell.",
        epilog="Each option can also be set by an environment variable, such as "
        "MNISTLAB_EPOCHS=3; an option wins over the variable.",
    )
    origins = {}
    for name, usage, read, help_text in SETTINGS:
        option, _, metavar = usage.partition(" ")
        if name not in cell:
            raise SettingsError(
                f"the parameters cell has no {name}: run it again, or restore it from git"
            )
        try:
            value = read(
                in_lesson_folder(cell[name]) if read in (folder, photo_paths) else cell[name]
            )
        except ValueError as error:
            raise SettingsError(f"{name} in the parameters cell: {error}") from None
        variable = environment_name(option)
        if environment.get(variable, "").strip():  # an empty variable counts as unset
            try:
                value = read(environment[variable])
            except ValueError as error:
                raise SettingsError(f"environment variable {variable}: {error}") from None
            origins[name] = variable
        if read is switch:
            parser.add_argument(
                option,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=value,
                help=f"{help_text} (now: {'on' if value else 'off'}; {variable}=1)",
            )
        elif read is photo_paths:
            parser.add_argument(
                option,
                dest=name,
                type=argparse_type(read, value),
                nargs="+",
                default=value,
                metavar="PATH",
                help=f"{help_text} ({variable}, paths separated by {os.pathsep!r})",
            )
        else:
            parser.add_argument(
                option,
                dest=name,
                type=argparse_type(read, value),
                default=value,
                metavar=metavar or None,
                help=f"{help_text} (now: {display(value)}; {variable})",
            )
    parser.add_argument("--doctor", action="store_true",
                        help="print what this machine offers the lesson, to paste when you ask "
                        "for help, and stop")
    settings = parser.parse_args(arguments)
    for name, usage, *_ in SETTINGS:
        option = usage.split()[0]
        if any(argument.split("=")[0] in (option, "--no-" + option[2:]) for argument in arguments):
            origins[name] = option
    if settings.tensorboard and not tensorboard_installed():
        raise SettingsError(
            "--tensorboard: TensorBoard is not installed. Install it with "
            "'.venv/bin/pip install tensorboard' (or 'pip install tensorboard'), then "
            "run again"
        )
    if settings.photos and isinstance(settings.photos[0], list):  # a list for each --photos
        settings.photos = [path for paths in settings.photos for path in paths]
    settings.origins = origins
    return settings


def tensorboard_installed():
    try:
        import torch.utils.tensorboard  # noqa: F401

        return True
    except ImportError:
        return False


def in_lesson_folder(value):
    """A path of the parameters cell (or a list of them), taken from the lesson's folder."""
    if isinstance(value, (list, tuple)):
        return [in_lesson_folder(item) for item in value]
    return HERE / Path(value).expanduser() if str(value).strip() else value


def argparse_type(read, default):
    """`read` for argparse; an empty value means the default, as an empty variable does."""

    def convert(value):
        if not value.strip():
            return default
        try:
            return read(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = read.__name__
    return convert


def display(value):
    if value == "":
        return '""'
    if isinstance(value, Path):
        return readable(value)
    if isinstance(value, list):
        return "[" + ", ".join(display(item) for item in value) + "]"
    return str(value)


def describe(settings):
    """A line of every setting, paths as typed, saying which came from elsewhere than the cell."""
    line = ", ".join(f"{name}={display(getattr(settings, name))}" for name, *_ in SETTINGS)
    if settings.origins:
        line += (
            "\n  (from "
            + ", ".join(f"{origin}: {name}" for name, origin in settings.origins.items())
            + "; these win over the parameters cell)"
        )
    return "Settings: " + line


def settings_or_stop(cell):
    """read_settings, ending in one plain line, exit status 2, when a value is wrong. In a kernel
    the cell stops with that line, and so does every later cell that uses the settings, rather
    than run on with the values from before."""
    try:
        settings = read_settings(cell)
    except SettingsError as error:
        message = f"{error}. Run python mnistlab.py --help to see the settings."
        if not IN_NOTEBOOK:
            stop(message)
        return BrokenSettings(f"{message} Fix it, then run the parameters cell and the cells "
                              f"below it again.")
    if settings.doctor:
        print(*doctor_report(settings), sep="\n")
        sys.exit(0)
    return settings


class BrokenSettings:
    """Settings that failed their check: reading any of them stops with the reason."""

    def __init__(self, message):
        self.message = message

    def __getattr__(self, name):
        if name == "origins" or any(name == setting for setting, *_ in SETTINGS):
            stop(self.message)
        raise AttributeError(name)  # what other tools look for, such as a variable viewer


# The device


def accelerator_type():
    """The kind of accelerator this PyTorch can use (cuda, mps, xpu, …), or None."""
    if hasattr(torch, "accelerator"):  # PyTorch 2.6 and newer: every kind through one interface
        found = torch.accelerator.current_accelerator() if torch.accelerator.is_available() \
            else None
        return found.type if found is not None else None
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else None


def devices_here():
    """Every device PyTorch can train on here, by name: cuda:0, cuda:1, …, mps, cpu."""
    kind = accelerator_type()
    if kind is None:
        return ["cpu"]
    count = torch.accelerator.device_count() if hasattr(torch, "accelerator") else (
        torch.cuda.device_count() if kind == "cuda" else 1)
    names = [kind] if kind == "mps" else [f"{kind}:{index}" for index in range(count)]
    return names + ["cpu"]


def gpu_memory(index):
    """(free, total) bytes of CUDA GPU `index`."""
    return torch.cuda.mem_get_info(index)


def every_gpu_memory():
    """[(free, total) bytes] of each CUDA GPU. Asking a GPU starts a CUDA context on it, which
    holds some of its memory while the process lives: with several GPUs, a short process of its
    own asks them, so that the lesson holds memory only on the GPU it trains on."""
    count = torch.cuda.device_count()
    if count <= 1:
        return [gpu_memory(index) for index in range(count)]
    asked = subprocess.run(
        [sys.executable, "-c", "import torch\nfor index in range(torch.cuda.device_count()):\n"
         "    print(*torch.cuda.mem_get_info(index))"],
        capture_output=True, text=True, timeout=120, check=True)
    return [tuple(map(int, line.split())) for line in asked.stdout.splitlines()]


def pick_device(name):
    """(device, why): the torch.device to train on, set up so that the same seed gives the same
    result on it, and a few words on why it was chosen."""
    here = devices_here()
    if name == "auto":
        name = here[0]
        if name.startswith("cuda:"):
            memory = every_gpu_memory()
            index = max(range(len(memory)), key=lambda gpu: memory[gpu][0])
            name, (free, total) = f"cuda:{index}", memory[index]
            why = f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
            why += f", the most of the {len(memory)} GPUs here" if len(memory) > 1 else ""
        else:
            why = ("the only accelerator here" if name != "cpu"
                   else "PyTorch sees no GPU here (python mnistlab.py --doctor says why)")
    else:
        if name not in here and f"{name}:0" in here:
            name += ":0"  # cuda means the first GPU
        if name not in here:
            stop(f"--device {name} was asked for, but there is no such device here; there is "
                 f"{', '.join(here)}. Use one of those, or --device auto.")
        why = "as asked"
    device = torch.device(name)
    if device.type == "cpu" and hasattr(os, "sched_getaffinity"):
        # A job scheduler or taskset may allow fewer cores than the machine has: use only those.
        torch.set_num_threads(min(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # cuDNN would otherwise time several algorithms and keep the fastest, which varies by run.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device, why


# The doctor's report


def python_line():
    venv = HERE / ".venv"
    line = f"Python {sys.version.split()[0]} at {sys.executable}"
    if Path(sys.prefix).resolve() == venv.resolve():
        return line + " (this repository's .venv)"
    if os.environ.get("CONDA_PREFIX") and Path(os.environ["CONDA_PREFIX"]) == Path(sys.prefix):
        return line + f" (the conda environment {Path(sys.prefix).name})"
    if venv.is_dir():
        return (line + f" - not this repository's .venv: in VS Code choose {readable(venv)} with "
                f"Select Kernel, or run {readable(venv / 'bin' / 'python')} in a terminal")
    return line + " - no .venv in this repository: see README.md, Quick start"


def nvidia_smi(*query):
    """What nvidia-smi prints for `query`, or None where it does not answer within 10 s."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        answer = subprocess.run(["nvidia-smi", *query], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return answer.stdout.strip() if answer.returncode == 0 else None


def pytorch_line(driver_gpus):
    line = f"PyTorch {torch.__version__}, "
    if torch.version.cuda is None:
        line += "a CPU-only build"
        if driver_gpus:
            line += (" - but nvidia-smi sees a GPU: install PyTorch's CUDA build (README.md, "
                     "Quick start, in a new .venv)")
        return line
    line += f"built for CUDA {torch.version.cuda}"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if cudnn:  # 92400 means 9.24.0
        line += f", cuDNN {cudnn // 10000}.{cudnn % 10000 // 100}.{cudnn % 100}"
    return line


def gpu_lines(driver_gpus):
    kind = accelerator_type()
    if kind == "cuda":
        return [f"GPU cuda:{index}: {torch.cuda.get_device_name(index)}, "
                f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
                for index, (free, total) in enumerate(every_gpu_memory())]
    if kind is not None:
        return [f"GPU: {kind}, through PyTorch's {kind} backend"]
    if driver_gpus and torch.version.cuda is not None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = (f"CUDA_VISIBLE_DEVICES={visible!r} hides them" if visible is not None
               else f"this PyTorch's CUDA {torch.version.cuda} may be newer than the driver "
               f"supports: install a PyTorch build for the CUDA version nvidia-smi shows, or "
               f"older")
        return [f"GPUs: none that PyTorch can use, though nvidia-smi sees {driver_gpus}: {why}"]
    return ["GPUs: none; the lesson trains on the CPU"]


def free_space_line(what, folder):
    existing = Path(folder).resolve()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    line = f"Disk for the {what} ({display(Path(folder))}): {free / 2**30:.1f} GiB free"
    return line + (" - under 1 GiB: free some space, or choose another folder" if free < 2**30
                   else "")


def download_line(dataset, mirror):
    official = DATASETS[dataset].torchvision_class.mirrors[0]
    address = (mirror.rstrip("/") + "/") if mirror else official
    probe = address + next(iter(IDX_FILES)) + ".gz"
    try:
        with urllib.request.urlopen(urllib.request.Request(probe, method="HEAD"), timeout=3):
            return f"Download address {address}: answers"
    except urllib.error.HTTPError as error:
        return f"Download address {address}: answers, but refuses ({error.code} {error.reason})"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return (f"Download address {address}: does not answer within 3 s ({reason}); the lesson "
                f"will use the sample: copy the files by hand or set --mirror (README.md, "
                f"Troubleshooting)")


def doctor_report(settings):
    """Lines that say what this machine offers the lesson, each problem with what to do."""
    names = nvidia_smi("--query-gpu=name", "--format=csv,noheader")
    driver = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    driver_gpus = ", ".join(names.splitlines()) if names else ""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [
        "mnistlab doctor: paste this block when you ask for help.",
        python_line(),
        pytorch_line(driver_gpus),
        f"NVIDIA driver {driver.splitlines()[0]}" if driver else
        "NVIDIA driver: nvidia-smi does not answer (no NVIDIA GPU here, or no driver)",
        *gpu_lines(driver_gpus),
        "CUDA_VISIBLE_DEVICES: " + ("not set" if visible is None else repr(visible)),
        f"CPU threads: {usable} usable here, of {os.cpu_count()} on the machine",
        free_space_line("data", settings.data_dir),
        free_space_line("outputs", settings.out_dir),
        download_line(settings.dataset, settings.mirror),
    ]


def short_report():
    """The doctor's three most useful lines, for the lesson's device cell: the Python, the
    PyTorch, and the GPUs it sees (without asking each for its memory)."""
    if accelerator_type() == "cuda":
        names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        gpus = f"GPUs visible to PyTorch: {len(names)} ({', '.join(sorted(set(names)))})"
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            gpus += f", as CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} allows"
    else:
        gpus = gpu_lines("")[0]
    return [python_line(), pytorch_line(""), gpus]


def check_memory(device, channels, batch_size):
    """Stop with one line if training DigitNet(channels) on batches of batch_size would need more
    memory than the device has free: better now than an allocator's error halfway through."""
    weights = 25 * channels + 50 * channels**2 + 320 * channels + 4 * channels + 10
    # Per image, what a training step keeps for the backward pass: the feature maps of each layer.
    per_image = channels * (24 * 24 + 3 * 12 * 12) + 2 * channels * (8 * 8 + 3 * 4 * 4) + 10
    needed = 4 * (4 * weights + 3 * batch_size * per_image)  # 4 bytes each; grads, Adam's moments
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = available_memory()
    if free is not None and needed > free:
        stop(f"a network of {channels} channels trained on batches of {batch_size:,} needs about "
             f"{needed / 2**30:.1f} GiB, and {device} has {free / 2**30:.1f} GiB free: use a "
             f"smaller --channels or --batch-size")


def available_memory():
    """Bytes of memory that a new allocation may take on this machine, or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def training_trouble(epoch, loss, accuracy, classes, lr, steps_per_epoch):
    """A plain explanation if the network is not learning after this epoch (its training
    diverged, or has barely started), or None if it is."""
    if not torch.isfinite(torch.tensor(loss)):
        return (f"Training diverged in epoch {epoch}: the loss became {loss}, so the weights are "
                f"no longer numbers. The learning rate {lr:g} is far too high for this network: "
                f"try the default, 0.02, or lower.")
    chance = 100 / classes
    if accuracy < 1.5 * chance:
        advice = (f"a learning rate of {lr:g} makes each step overshoot: try 0.02 or lower"
                  if lr > 0.1 else f"with only {steps_per_epoch} step{'s' * (steps_per_epoch > 1)} "
                  f"an epoch it has barely started: try a smaller batch size, or more epochs")
        return (f"After epoch {epoch} the network does no better than guessing ({accuracy:.1f} % "
                f"right, where guessing gets {chance:.0f} %): {advice}.")
    return None


def describe_device(device, why):
    if device.type == "cuda":
        return f"Training on {device} ({torch.cuda.get_device_name(device)}): {why}"
    if device.type == "cpu":
        return f"Training on cpu with {torch.get_num_threads()} threads: {why}"
    return f"Training on {device}: {why}"


@contextlib.contextmanager
def out_of_memory_stops(device, batch_size):
    """Training and testing inside this end, if the device runs out of memory, with one line
    that says how much was free and what to try; the memory the failed step held is given back,
    so that in a kernel the next run goes on without a restart."""
    message = None
    try:
        yield
    except RuntimeError as error:  # torch.OutOfMemoryError is one, and MPS's error too
        if "out of memory" not in str(error).lower():
            raise
        traceback.clear_frames(error.__traceback__)  # their tensors go with them
        message = f"{device} ran out of memory with batches of {batch_size:,}"
        if device.type == "cuda":
            free, total = gpu_memory(device.index or 0)
            message += (f" ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free now). Try a "
                        f"smaller --batch-size, another GPU (--device cuda:N), or nvidia-smi to "
                        f"see who holds its memory.")
        else:
            message += ". Try a smaller --batch-size or --channels."
    if message:  # outside the except block, so that no traceback keeps the tensors alive
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        elif device.type == "mps":
            torch.mps.empty_cache()
        stop(message)


# Files and figures


def partial_path(path):
    """Where to write `path` until it is whole: a hidden name of this process's own, so that two
    runs writing the same file never write into each other's."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def save_file(path, write):
    """Write a file whole or not at all; say so, rather than fail, when it cannot be written."""
    partial = partial_path(path)
    try:
        write(partial)
        os.replace(partial, path)
        return True
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        partial.unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        print(f"Warning: could not save {readable(path)} ({reason}). Make room, or choose another "
              f"folder with --out-dir.")
        return False


class Figures:
    """Saves each figure as a PNG in out_dir and, in a notebook, shows it under the cell."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.out_dir).close()
            self.can_save = True
        except OSError as error:
            print(
                f"Warning: cannot write to {readable(self.out_dir)} ({error.strerror}). The lesson "
                f"goes on, but its figures and the trained model will not be saved. Choose another "
                f"folder with --out-dir or MNISTLAB_OUT_DIR."
            )
            self.can_save = False

    def show(self, figure, name):
        path = self.out_dir / f"{name}.png"
        if self.can_save and save_file(
            path,
            lambda partial: figure.savefig(partial, format="png", dpi=120, bbox_inches="tight"),
        ):
            print(f"Saved the figure {readable(path)}")
        if IN_NOTEBOOK:
            plt.show()
        else:
            plt.close(figure)


def digit_grid(images, captions, title, color="black"):
    """A figure of small images in rows, each with a caption above it."""
    # One picture of many small images draws several times faster than one plot per image.
    # Class names, such as "Ankle boot → Sneaker", need wider columns than digits.
    wide = max(len(caption) for caption in captions) > 8
    columns, inches = (6, 1.8) if wide else (10, 1)
    rows = -(-len(images) // columns)
    figure, ax = plt.subplots(figsize=(columns * inches, (1.2 * rows + 0.3) * inches))
    for position, (image, caption) in enumerate(zip(images, captions, strict=True)):
        row, column = divmod(position, columns)
        ax.imshow(
            np.asarray(image),
            cmap="gray_r",
            extent=(34 * column, 34 * column + 28, -40 * row - 28, -40 * row),
        )
        ax.text(
            34 * column + 14,
            -40 * row + 2,
            caption,
            ha="center",
            va="bottom",
            color=color,
            fontsize=9 if wide else 10,
        )
    ax.set(xlim=(-3, 34 * columns - 3), ylim=(-40 * rows + 8, 12), title=title)
    ax.axis("off")
    return figure


def readings_figure(images, probabilities, names):
    """A prepared photo beside the bars of its ten probabilities; many photos, a grid of guesses."""
    best = probabilities.argmax(dim=1).tolist()
    if len(images) > 4:
        captions = [
            f"{guess} ({probabilities[i, guess] * 100:.0f} %)" for i, guess in enumerate(best)
        ]
        return digit_grid(
            images, captions, "Your digits as the network sees them, with its guesses"
        )
    figure, axes = plt.subplots(
        len(images),
        2,
        figsize=(8, 2.2 * len(images)),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [1, 2.5]},
    )
    for (picture, bars), image, row, guess, name in zip(
        axes, images, probabilities, best, names, strict=True
    ):
        picture.imshow(np.asarray(image), cmap="gray")
        picture.set(title=f"{name}, prepared", xticks=[], yticks=[])
        bars.bar(
            range(10),
            (row * 100).tolist(),
            color=["firebrick" if d == guess else "lightsteelblue" for d in range(10)],
        )
        bars.set(
            xticks=range(10), ylim=(0, 100), ylabel="probability (%)", title=f"best guess: {guess}"
        )
    return figure


# Training


def progress(batches, description):
    """A progress bar over the batches, or none without a description. In a notebook it goes to
    stdout: Jupyter colours whatever comes on stderr as an error."""
    return tqdm(
        batches,
        desc=description,
        unit="batch",
        mininterval=1,
        disable=not description,
        file=sys.stdout if IN_NOTEBOOK else sys.stderr,
    )


class StopRequest:
    """While active, a first Ctrl-C sets `requested` and a second one interrupts at once."""

    def __enter__(self):
        self.requested = False
        try:
            self.previous = signal.signal(signal.SIGINT, self.request)
        except ValueError:  # not the main thread, as under some debuggers: Ctrl-C works as usual
            self.previous = None
        return self

    def request(self, *_):
        if self.requested:
            if not IN_NOTEBOOK:
                end_at_once()
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *_):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def tensorboard_writer(log_dir, model, images):
    """A TensorBoard SummaryWriter in log_dir, with some training images and the network's graph."""
    from torch.utils.tensorboard import SummaryWriter  # only here: it needs the tensorboard package

    writer = SummaryWriter(log_dir)
    pictures = images[:32]
    writer.add_images(
        "training images", (pictures - pictures.min()) / (pictures.max() - pictures.min())
    )
    with warnings.catch_warnings():  # add_graph traces with torch.jit, which warns it is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        writer.add_graph(model.eval(), images[:8])
    return writer


# Checkpoints


class CheckpointError(Exception):
    pass


def save_checkpoint(path, model, channels, dataset, class_names, mean, std):
    """The weights and what it takes to use them, written whole or not at all."""
    checkpoint = {
        "weights": model.state_dict(),
        "channels": channels,
        "dataset": dataset,
        "class_names": list(class_names),
        "mean": float(mean),
        "std": float(std),
    }
    return save_file(path, lambda partial: torch.save(checkpoint, partial))


def load_checkpoint(path, network_class, device):
    """(model, checkpoint): a network_class(channels) with the saved weights, and what was saved
    with them; or a CheckpointError that says why they do not load."""
    try:
        # weights_only: tensors, numbers and strings alone: a file from elsewhere cannot run code
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(
            f"There is no checkpoint at {readable(path)}: run the lesson to train and save one."
        ) from None
    except PermissionError:
        raise CheckpointError(
            f"{readable(path)} is not readable by you (permission denied): ask its owner (ls -l "
            f"shows who), or run the lesson to save a checkpoint of your own."
        ) from None
    except IsADirectoryError:
        raise CheckpointError(f"{readable(path)} is a folder, not a checkpoint.") from None
    except pickle.UnpicklingError:  # what weights_only=True refuses: pickled Python objects
        raise CheckpointError(
            f"{readable(path)} holds a whole pickled Python object, not the weights and settings "
            f"the lesson saves, and such a file could run code when loaded. Run the lesson to "
            f"save a checkpoint of its own."
        ) from None
    except Exception:  # torch reports a damaged file in many ways, none of them for a learner
        raise CheckpointError(
            f"{readable(path)} is damaged, incomplete, or not a PyTorch checkpoint. Delete it and "
            f"run the lesson again."
        ) from None
    expected = {"weights", "channels", "dataset", "mean", "std"}
    if not isinstance(checkpoint, dict) or not expected <= set(checkpoint):
        raise CheckpointError(
            f"{readable(path)} holds weights alone, without the settings they were "
            f"trained with (an older lesson saved it so). Run the lesson again to "
            f"save a new one."
        )
    model = network_class(checkpoint["channels"]).to(device, memory_format=torch.channels_last)
    try:
        model.load_state_dict(checkpoint["weights"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"{readable(path)} holds the weights of a different network, which do not "
            f"fit {network_class.__name__} ({str(error).splitlines()[-1].strip()[:120]})."
            f" Run the lesson again to save a matching one."
        ) from None
    return model.eval(), checkpoint


# Training that survives being cut short

# The settings a run's result depends on: a cut run resumes only with the same ones.
RUN_SETTINGS = ("epochs", "batch_size", "lr", "seed", "channels", "augment", "dataset", "sample")


class TrainingRun:
    """The training checkpoint of a run, saved whole after every finished epoch: the network,
    the optimiser's and scheduler's state, the random generators' state and the history, so
    that `--resume` goes on exactly where a cut run stopped."""

    def __init__(self, settings, model, optimizer, scheduler, history):
        self.path = Path(settings.out_dir) / f"{settings.dataset}_training.pt"
        self.settings = {name: getattr(settings, name) for name in RUN_SETTINGS}
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.history = history
        # Where nothing can be written, the lesson has said so already; say nothing each epoch.
        self.can_save = os.access(settings.out_dir, os.W_OK)

    def save(self, epoch):
        if not self.can_save:
            return
        state = {
            "epoch": epoch, "settings": self.settings, "history": self.history,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "cpu_random": torch.get_rng_state(),
            "cuda_random": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }
        self.can_save = save_file(self.path, lambda partial: torch.save(state, partial))

    def resume(self, device):
        """The first epoch still to train: after the last finished one of the cut run saved
        here, or 1 (with a note) where there is none. Stops, in one line, if that run had other
        settings or its file cannot be read."""
        if not self.path.is_file():
            print(f"Nothing to resume: there is no cut run in {readable(self.path)}. Training "
                  f"starts afresh.")
            return 1
        try:
            state = torch.load(self.path, map_location=device, weights_only=True)
            saved = state["settings"]
        except Exception:  # damaged, cut short, unreadable, or not a training checkpoint
            stop(f"{readable(self.path)} cannot be read as a training checkpoint: delete it, "
                 f"and run without --resume to start afresh.")
        for name, now in self.settings.items():
            if saved.get(name) != now:
                stop(f"--resume: the run in {readable(self.path)} was trained with {name}="
                     f"{display(saved.get(name))}, and this one has {name}={display(now)}. Run "
                     f"with the same settings to resume it, or without --resume to start afresh.")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["cpu_random"].cpu())
        if state["cuda_random"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([random.cpu() for random in state["cuda_random"]])
        self.history.update(state["history"])
        print(f"Resuming the run in {readable(self.path)} after epoch {state['epoch']} of "
              f"{self.settings['epochs']}.")
        return state["epoch"] + 1


def checkpoint_path(out_dir, dataset):
    """Each dataset has its own checkpoint, so that training on one never replaces the other's."""
    return Path(out_dir) / f"{dataset}_cnn.pt"


# Photos


SMALLEST_PHOTO = 10  # pixels a side: anything smaller cannot show a digit's strokes


def open_photo(path):
    """A photo or scan as a Pillow image, read as a learner means it: transparency flattened onto
    white paper, 16-bit and floating-point grey scaled to 0-255, a very large photo read in
    reduced form. Or a ValueError that says in a few words why it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise ValueError("this is a folder, not a photo")
    try:
        photo = open_whole_or_reduced(path)
    except FileNotFoundError:
        raise ValueError("there is no such file") from None
    except PermissionError:
        raise ValueError("it is not readable by you (permission denied)") from None
    except UnidentifiedImageError:
        raise ValueError("this is not an image that Pillow can read (use PNG or JPEG)") from None
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's ways of saying "damaged"
        raise ValueError(f"it is damaged or cut short ({str(error).splitlines()[0]})") from None
    if min(photo.size) < SMALLEST_PHOTO:
        width, height = photo.size
        raise ValueError(f"it is only {width} × {height} pixels, too small to show a digit: "
                         f"use a photo at least {SMALLEST_PHOTO} pixels a side")
    return flattened(photo)


def open_whole_or_reduced(path):
    """Image.open and load, past Pillow's limit on pixels, since the lesson shrinks every photo
    to 1,000 pixels a side anyway; a JPEG is decoded at that reduced size straight away."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            photo = Image.open(path)
            if photo.format == "JPEG":
                photo.draft(photo.mode, (1000, 1000))
            photo.load()
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return photo


def flattened(photo):
    """The photo in a mode that converts to 8-bit grey as the eye sees it."""
    if photo.mode in ("I", "F") or photo.mode.startswith("I;16"):
        grey = np.asarray(photo, dtype=np.float64)
        low, high = grey.min(), grey.max()
        scaled = (grey - low) / (high - low) * 255 if high > low else np.zeros_like(grey)
        return Image.fromarray(scaled.round().astype(np.uint8), "L")
    if photo.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in photo.info:
        upright = ImageOps.exif_transpose(photo)  # before the EXIF is lost with the alpha
        paper = Image.new("RGBA", upright.size, "white")
        return Image.alpha_composite(paper, upright.convert("RGBA")).convert("RGB")
    if photo.mode not in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):  # HSV, LAB: by way of RGB
        return photo.convert("RGB")
    return photo


def prepare_photos(paths, prepare):
    """(digits, paths_read): the photos at `paths`, each made into a digit by `prepare`, as one
    tensor, and the paths of those. A photo that cannot be read or prepared is named, with the
    reason, and the others are still read; if none can be, the lesson stops with one line."""
    digits, paths_read, problems = [], [], []
    for path in paths:
        try:
            digits.append(prepare(open_photo(path)))
            paths_read.append(path)
        except ValueError as error:
            problems.append(f"{readable(path)}: {error}")
    if not digits:
        stop("; ".join(problems))
    for problem in problems:
        print(f"Skipped {problem}.")
    return torch.stack(digits), paths_read


# Keeping mnistlab_saved.py in step with the lesson


def saved_source(lesson=LESSON):
    """The text of mnistlab_saved.py: the lesson's imports that the cells marked #@save use, then
    those cells, in the lesson's order."""
    import jupytext  # only the export needs it

    cells = [cell.source for cell in jupytext.read(lesson).cells if cell.cell_type == "code"]
    saved = [source.split("\n", 1)[1].strip() for source in cells if source.startswith("#@save\n")]
    body = "\n\n\n".join(saved)
    used = {node.id for node in ast.walk(ast.parse(body)) if isinstance(node, ast.Name)}
    imports = [
        ast.get_source_segment(source, node)
        for source in cells
        for node in ast.parse(source).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any((alias.asname or alias.name.split(".")[0]) in used for alias in node.names)
    ]
    docstring = (
        '"""The network, its training and the photo preparation, as the lesson defines them.\n\n'
        "Generated from the cells of mnistlab.py that start with #@save, by\n"
        "`python mnistlab_tools.py export`: edit the lesson, then run that. predict.py, the\n"
        "benchmark and the tests import it, so that none of them runs or reads the lesson.\n"
        '"""\n'
    )
    imports = "\n".join(imports).replace("\nimport mnistlab_tools", "\n\nimport mnistlab_tools")
    return f"{docstring}{imports}\n\n\n{body}\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["export"]:
        sys.exit(__doc__)
    SAVED_MODULE.write_text(saved_source())
    print(f"Wrote {readable(SAVED_MODULE)} from the cells of {readable(LESSON)} marked #@save.")
