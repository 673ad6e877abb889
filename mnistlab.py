# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Your first convolutional network: reading handwritten digits with PyTorch
#
# In this lesson you train a small convolutional neural network (CNN) to read
# the handwritten digits of MNIST: 60,000 training images and 10,000 test
# images, each 28 × 28 grey pixels with the digit it shows. Then you look at
# where the network goes wrong: a confusion matrix of which digits it mixes up,
# and a gallery of the digits it misread.
#
# The same file runs three ways: cell by cell in VS Code (**Run Cell** on each
# `# %%`), **Run All** in `mnistlab.ipynb`, or `python mnistlab.py` in a
# terminal, where the figures are saved as PNG files instead of shown.

# %% [markdown]
# ## Imports
#
# PyTorch builds and trains the network, torchvision fetches MNIST, and
# matplotlib, pandas and seaborn draw the results. Outside a notebook there
# may be no screen (an SSH session), so there matplotlib draws into files
# (the `Agg` backend) and never opens a window.

# %%
import argparse
import ast
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

IN_NOTEBOOK = "ipykernel" in sys.modules
if not IN_NOTEBOOK:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from sklearn.metrics import classification_report
from torch import nn
from torchvision import datasets
from torchvision.transforms.functional import pil_to_tensor
from tqdm import tqdm

# %% [markdown]
# ## Settings
#
# Every knob of the lesson is here, with its default. In a terminal, pass
# options: `python mnistlab.py --epochs 3` (`--help` lists them all). In a
# notebook or the Interactive Window, set the matching environment variable
# before the kernel starts, for example `MNISTLAB_EPOCHS=3`. An option wins
# over the environment, which wins over the default. This cell is plumbing:
# read past it if you like.

# %%
# A notebook kernel has no __file__: VS Code names the notebook in
# __vsc_ipynb_file__, and Jupyter starts the kernel in the notebook's folder.
LESSON_FILE = globals().get("__file__") or globals().get("__vsc_ipynb_file__") or "mnistlab.ipynb"
HERE = Path(LESSON_FILE).resolve().parent
SAMPLE_DIR = HERE / "sample"
DEVICES = ("auto", "cuda", "mps", "cpu")
# Each dataset: torchvision's class for it, where its files can be downloaded, and its class names.
DATASETS = {
    "mnist": (datasets.MNIST, "https://ossci-datasets.s3.amazonaws.com/mnist/", [str(d) for d in range(10)]),
    "fashion": (datasets.FashionMNIST, "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                datasets.FashionMNIST.classes),
}


class SettingsError(Exception):
    pass


class SettingsParser(argparse.ArgumentParser):
    def error(self, message):
        raise SettingsError(message)


def stop(message):
    """End the lesson with a plain message: exit status 2 in a terminal, one short error in a notebook."""
    if IN_NOTEBOOK:
        raise SystemExit(message)
    print(f"mnistlab: {message}", file=sys.stderr)
    sys.exit(2)


def count(text):
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use a whole number of 1 or more")
    return int(text)


def seed_number(text):
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use a whole number of 0 or more")
    return int(text)


def learning_rate(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use a number above 0, such as 0.01")
    return value


def device_name(text):
    if text not in DEVICES:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use one of {', '.join(DEVICES)}")
    return text


def dataset_name(text):
    if text not in DATASETS:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use one of {', '.join(DATASETS)}")
    return text


def photo_path(text):
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: there is no such file")
    return Path(text)


def photo_paths(text):
    return [photo_path(part) for part in text.split(os.pathsep) if part]


def tensorboard_installed():
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        return True
    except ImportError:
        return False


def switch(text):
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if text.strip().lower() not in words:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use 1 or 0")
    return words[text.strip().lower()]


# option, how to read its value, default, help
SETTINGS = [
    ("--epochs", count, 1, "passes over the training data"),
    ("--batch-size", count, 128, "digits per training step"),
    ("--lr", learning_rate, 0.02, "peak learning rate of the one-cycle schedule"),
    ("--seed", seed_number, 0, "random seed, for repeatable runs"),
    ("--channels", count, 16, "feature maps of the first convolution (the second has twice as many)"),
    ("--augment", switch, False, "shift each batch of training digits by up to 2 pixels, differently each time"),
    ("--device", device_name, "auto", "where to train: auto picks cuda, then mps, then cpu"),
    ("--dataset", dataset_name, "mnist", "mnist for handwritten digits, fashion for Fashion-MNIST's clothes"),
    ("--data-dir", Path, HERE / "data", "folder for the data (torchvision keeps MNIST's files in MNIST/raw/ in it)"),
    ("--sample", switch, False, "train and test on the small sample committed in the repository"),
    ("--out-dir", Path, HERE / "outputs", "folder for the figures and the trained model"),
    ("--tensorboard", switch, False, "log the training to runs/ for TensorBoard"),
    ("--predict", photo_paths, [], "photos or scans of handwritten digits (PNG, JPEG) to read with the saved "
                                   "network, skipping the lesson"),
]


def environment_name(option):
    return "MNISTLAB_" + option.lstrip("-").replace("-", "_").upper()


def read_settings(arguments, environment):
    """Read the settings: command-line options win over MNISTLAB_* variables, which win over the defaults."""
    parser = SettingsParser(
        prog="python mnistlab.py",
        description="Train a small CNN on MNIST, then show which digits it confuses.",
        epilog="Each option can also be set by an environment variable, such as MNISTLAB_EPOCHS=3.",
    )
    for option, read, default, help_text in SETTINGS:
        variable = environment_name(option)
        if variable in environment:
            try:
                default = read(environment[variable])
            except argparse.ArgumentTypeError as error:
                raise SettingsError(f"environment variable {variable}: {error}") from None
        if read is switch:
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif read is photo_paths:
            parser.add_argument(option, type=photo_path, nargs="+", default=default, metavar="PATH",
                                help=f"{help_text} ({variable}, paths separated by {os.pathsep!r})")
        else:
            metavar = "{" + ",".join(DEVICES) + "}" if read is device_name else None
            parser.add_argument(option, type=read, default=default, metavar=metavar,
                                help=f"{help_text} (default: %(default)s; {variable})")
    settings = parser.parse_args(arguments)
    if settings.tensorboard and not tensorboard_installed():
        raise SettingsError("--tensorboard: TensorBoard is not installed. Install it with "
                            "'.venv/bin/pip install tensorboard' (or 'pip install tensorboard'), then run again")
    return settings


def readable(value):
    """A path inside the current folder, relative to it, as you would type it; any other value as it is."""
    if isinstance(value, Path) and value.resolve().is_relative_to(Path.cwd()):
        return value.resolve().relative_to(Path.cwd())
    return value


def can_write_to(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError as error:
        print(f"Warning: cannot write to {readable(folder)} ({error.strerror}). The lesson goes on, but its figures "
              f"and the trained model will not be saved. Choose another folder with --out-dir or MNISTLAB_OUT_DIR.")
        return False


try:
    # A kernel's own command line (-f kernel.json) is not meant for the lesson.
    settings = read_settings([] if IN_NOTEBOOK else sys.argv[1:], os.environ)
except SettingsError as error:
    stop(f"{error}. Run python mnistlab.py --help to see the settings.")
print("Settings:", ", ".join(f"{name}={readable(value)}" for name, value in vars(settings).items()))
can_save = can_write_to(settings.out_dir)

# %% [markdown]
# ## Helpers for files and figures
#
# Small helpers keep the rest of the lesson short. `mnist_folder` finds
# MNIST, downloads it or falls back to the sample. `save_file` writes to a
# temporary file and renames it, so an interrupted run never leaves half a
# file behind. `show` saves each figure as a PNG in the output folder and, in
# a notebook, also shows it under the cell. `draw_digits` lays out digits in
# a grid, each with a caption. `StopRequest` lets Ctrl-C (or the notebook's
# Interrupt button) end training cleanly after the current batch.


# %%
def save_file(path, write):
    """Write a file whole or not at all; say so, rather than fail, when it cannot be written."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
        return True
    except OSError as error:
        partial.unlink(missing_ok=True)
        print(f"Warning: could not save {readable(path)} ({error.strerror or error}).")
        return False


def show(figure, name):
    path = settings.out_dir / f"{name}.png"
    if can_save and save_file(path, lambda partial: figure.savefig(partial, format="png", dpi=120,
                                                                 bbox_inches="tight")):
        print(f"Saved the figure {readable(path)}")
    if IN_NOTEBOOK:
        plt.show()
    else:
        plt.close(figure)


def draw_digits(images, captions, title, color="black"):
    # One picture of many small images draws several times faster than one plot per digit.
    wide = max(len(caption) for caption in captions) > 8  # class names, such as "Ankle boot → Sneaker"
    columns, inches = (6, 1.8) if wide else (10, 1)
    rows = -(-len(images) // columns)
    figure, ax = plt.subplots(figsize=(columns * inches, (1.2 * rows + 0.3) * inches))
    for position, (image, caption) in enumerate(zip(images, captions)):
        row, column = divmod(position, columns)
        ax.imshow(image, cmap="gray_r", extent=(34 * column, 34 * column + 28, -40 * row - 28, -40 * row))
        ax.text(34 * column + 14, -40 * row + 2, caption, ha="center", va="bottom", color=color,
                fontsize=9 if wide else 10)
    ax.set(xlim=(-3, 34 * columns - 3), ylim=(-40 * rows + 8, 12), title=title)
    ax.axis("off")
    return figure


# Each file: the number at its start that says what it holds, how many digits, and the bytes before them.
MNIST_FILES = {"train-images-idx3-ubyte": (2051, 60_000, 16), "train-labels-idx1-ubyte": (2049, 60_000, 8),
               "t10k-images-idx3-ubyte": (2051, 10_000, 16), "t10k-labels-idx1-ubyte": (2049, 10_000, 8)}


def mnist_problems(raw_dir):
    """What is wrong with the MNIST files in raw_dir: one line per missing, cut-short or damaged file."""
    problems = []
    for name, (magic, count, header) in MNIST_FILES.items():
        path = raw_dir / name
        size = header + count * (28 * 28 if magic == 2051 else 1)
        if not path.is_file():
            problems.append(f"{name} is missing" + (" (its .gz is there: unpack it with gunzip)"
                                                    if path.with_name(name + ".gz").is_file() else ""))
            continue
        with path.open("rb") as file:
            start = file.read(8)
        if start != magic.to_bytes(4, "big") + count.to_bytes(4, "big") or path.stat().st_size != size:
            problems.append(f"{name} is damaged or incomplete ({path.stat().st_size:,} bytes; "
                            f"the MNIST file has {size:,})")
    return problems


def mnist_folder(settings):
    """The folder to read the dataset from: data_dir once its files are there and whole, or the committed sample."""
    if settings.sample:
        return SAMPLE_DIR
    dataset, url, _ = DATASETS[settings.dataset]
    raw_dir = settings.data_dir / dataset.__name__ / "raw"
    chosen = settings.data_dir.resolve() != (HERE / "data").resolve()
    if chosen and not settings.data_dir.is_dir():
        stop(f"--data-dir {readable(settings.data_dir)}: there is no such folder. It should hold "
             f"{dataset.__name__}/raw/ with "
             f"the files {', '.join(MNIST_FILES)} (or use --sample).")
    if not chosen and not all((raw_dir / name).is_file() for name in MNIST_FILES):
        try:
            for train in (True, False):
                dataset(settings.data_dir, train=train, download=True)
        except (OSError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[-1]
            print(f"Could not download {dataset.__name__} ({reason}).\n"
                  f"To use the full dataset, fetch these four files on a machine with internet access\n"
                  f"  {'  '.join(name + '.gz' for name in MNIST_FILES)}\n"
                  f"from {url} and copy them into\n"
                  f"  {raw_dir.resolve()}\n"
                  f"Going on with the small sample in {readable(SAMPLE_DIR)}/: the accuracy will be lower "
                  f"than on the full dataset.\n")
            return SAMPLE_DIR
    problems = mnist_problems(raw_dir)
    if problems:
        remedy = ("copy whole files there" if chosen else
                  "delete the damaged or incomplete files and run again to download them")
        stop(f"{dataset.__name__} in {readable(raw_dir)} cannot be used: {'; '.join(problems)}. To fix it, "
             f"{remedy}, or use --sample.")
    return settings.data_dir


class StopRequest:
    """While active, a first Ctrl-C sets `requested` and a second one interrupts at once."""

    def __enter__(self):
        self.requested = False
        try:
            self.previous = signal.signal(signal.SIGINT, self.request)
        except ValueError:  # not the main thread, e.g. under some debuggers: Ctrl-C keeps its usual meaning
            self.previous = None
        return self

    def request(self, *_):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *_):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# %% [markdown]
# ## Where to train: the device
#
# A GPU trains much faster than a CPU, so the lesson uses one when PyTorch can
# see it: an NVIDIA GPU through CUDA, or an Apple-silicon GPU through MPS.
# Everything we build later is moved to this `device`. On a CPU, PyTorch
# runs one thread per physical core, which is right, unless the process may
# use fewer cores (a job scheduler or `taskset`): then it uses only those. On
# CUDA, cuDNN may time its convolution routines once and keep the fastest.

# %%
available = [name for name, present in [("cuda", torch.cuda.is_available()),
                                        ("mps", torch.backends.mps.is_available()),
                                        ("cpu", True)] if present]
if settings.device == "auto":
    device = torch.device(available[0])
elif settings.device in available:
    device = torch.device(settings.device)
else:
    stop(f"--device {settings.device} was asked for, but PyTorch sees no such device here; "
         f"available: {', '.join(available)}. Use --device auto.")
if device.type == "cpu" and hasattr(os, "sched_getaffinity"):
    torch.set_num_threads(min(torch.get_num_threads(), len(os.sched_getaffinity(0))))
torch.backends.cudnn.benchmark = True
print(f"Training on {device}", f"({torch.cuda.get_device_name(device)})" if device.type == "cuda"
      else f"with {torch.get_num_threads()} threads" if device.type == "cpu" else "")

# %% [markdown]
# `python mnistlab.py --predict photo.jpg` only reads your own handwriting
# (see *Your own handwriting* near the end) with the network the lesson
# saved last time, so it skips the lesson itself.

# %%
if settings.predict and not IN_NOTEBOOK:
    # What it needs is defined further down: define every function and class, without running the lesson.
    lesson = ast.parse(Path(LESSON_FILE).read_text())
    exec(compile(ast.Module([node for node in lesson.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))],
                            type_ignores=[]), LESSON_FILE, "exec"))
    try:
        saved = load_model(settings.out_dir / "mnist_cnn.pt", device)
        show_your_digits(saved, settings.predict, mean=0.1307, std=0.3081)  # MNIST's pixel mean and spread
    except (CheckpointError, ValueError) as error:
        stop(str(error))
    sys.exit(0)

# %% [markdown]
# ## The data
#
# `torchvision.datasets.MNIST` reads the four MNIST files from
# `data/MNIST/raw/`. The first time, `mnist_folder` (below) has torchvision
# download them there, and every time it checks that they are whole, so
# that a download cut short shows up now rather than as a strange error
# later. Many servers cannot reach the internet: then it says how to fetch
# the files by hand and picks a small sample of real MNIST digits that
# ships with this repository (2,000 for training, 500 for testing).
#
# `--dataset fashion` swaps in Fashion-MNIST: the same format and size, but
# photos of ten kinds of clothing, which are much harder to tell apart. The
# rest of the lesson is unchanged; only the class names differ.

# %%
dataset, _, class_names = DATASETS[settings.dataset]
data_root = mnist_folder(settings)
train_set = dataset(data_root, train=True)
test_set = dataset(data_root, train=False)
on_sample = data_root == SAMPLE_DIR
items = "digits" if settings.dataset == "mnist" else "images"
print(f"{len(train_set):,} training {items} and {len(test_set):,} test {items} of {dataset.__name__}"
      + (" from the committed sample" if on_sample else f" from {readable(data_root / dataset.__name__ / 'raw')}"))

# %% [markdown]
# All of MNIST takes 190 MB as 32-bit numbers, so it fits in memory, even on
# a GPU. The usual `DataLoader` would turn each image into a tensor one at a
# time, in Python, 60,000 times an epoch; that costs more than the training
# itself for a network this small. Instead we convert each split once, into
# one tensor on the device, and a batch is then just a slice of it. The
# pixels are scaled to mean 0 and standard deviation 1, which helps the
# optimiser, and get a channel dimension, because convolutions expect images
# shaped `(batch, channels, height, width)`.

# %%
train_pixels = train_set.data.float() / 255
mean, std = train_pixels.mean().item(), train_pixels.std().item()


def to_tensors(dataset):
    images = (dataset.data.float() / 255 - mean) / std
    return images.unsqueeze(1).to(device), dataset.targets.to(device)


train_images, train_labels = to_tensors(train_set)
test_images, test_labels = to_tensors(test_set)
print(f"training images {tuple(train_images.shape)}, mean {mean:.4f}, std {std:.4f}")

# %% [markdown]
# Before training anything, look at the data: a few training digits with the
# label that comes with each.

# %%
figure = draw_digits(train_set.data[:30], [class_names[label] for label in train_set.targets[:30].tolist()],
                     "Training images and their labels")
show(figure, "sample_digits")

# %% [markdown]
# ## The network
#
# A convolution slides small learned filters (5 × 5 pixels here) over the
# image, so the same stroke detector works anywhere in it. Two rounds of
# convolution → max-pooling → batch normalisation → ReLU turn the 28 × 28
# image into 32 maps of 4 × 4 features, and a linear layer turns those into
# ten scores, one per digit. `--channels` sets the width: 16 feature maps in
# the first convolution by default, 32 for a network four times as costly
# that learns a little more.
#
# The network is small (under 20,000 weights) because MNIST is easy, and
# every choice keeps it fast: pooling comes straight after each convolution,
# so the layers after it handle a quarter of the pixels; batch normalisation
# keeps each layer's outputs on a steady scale, which allows a high learning
# rate, and it adds its own offset, so the convolutions need no bias.

# %%
class DigitNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=5, bias=False),             # 28 × 28 → 24 × 24
            nn.MaxPool2d(2),                                               # → 12 × 12
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=5, bias=False),  # → 8 × 8
            nn.MaxPool2d(2),                                               # → 4 × 4
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
        )
        self.classify = nn.Linear(2 * channels * 4 * 4, 10)

    def forward(self, images):
        return self.classify(self.features(images).flatten(1))


print(DigitNet(settings.channels))
print(f"{sum(p.numel() for p in DigitNet(settings.channels).parameters()):,} parameters")

# %% [markdown]
# ## Training and testing
#
# One epoch is one pass over the training digits in a fresh random order, a
# batch at a time: the network scores the batch, cross-entropy measures how
# wrong the scores are, backpropagation finds how each weight should change,
# and the optimiser changes it. With `--augment`, each batch is first shifted
# by a pixel or two: the network sees a slightly different digit each epoch,
# which helps it on digits it has never seen when it trains for many epochs. `predict` runs the network without tracking
# gradients (`inference_mode`) and in evaluation mode, where batch
# normalisation uses the statistics it learned instead of the batch's own.

# %%
def train_one_epoch(model, optimizer, scheduler, images, labels, batch_size, augment=False, progress="",
                    ctrl_c=None, writer=None, steps_before=0):
    model.train()
    losses = []
    batches = torch.randperm(len(images), device=images.device).split(batch_size)
    for batch in tqdm(batches, desc=progress, unit="batch", disable=not progress, mininterval=1):
        if ctrl_c and ctrl_c.requested:
            break
        inputs = images[batch]
        if augment:  # MNIST's digits have 4 pixels of margin, so what rolls off one edge is background
            inputs = inputs.roll(torch.randint(-2, 3, (2,)).tolist(), dims=(2, 3))
        loss = F.cross_entropy(model(inputs), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
        if writer:
            writer.add_scalar("loss/batch", loss.item(), steps_before + len(losses))
    return torch.stack(losses).tolist() if losses else []


@torch.inference_mode()
def predict(model, images):
    model.eval()
    return torch.cat([model(batch).argmax(dim=1) for batch in images.split(1000)])


def accuracy(predicted, known):
    return (predicted == known).float().mean().item() * 100


# %% [markdown]
# Now train. Adam adapts the step size of each weight on its own, and the
# one-cycle schedule warms the learning rate up to `--lr` and then anneals it
# towards zero: together they reach 99 % in a single epoch. The model is kept
# "channels last" (pixel by pixel, all channels together), the memory layout
# the CPU's and the GPU's convolution routines are fastest with. Running this
# cell again starts over from a fresh, randomly initialised network. Ctrl-C,
# or the notebook's Interrupt button, stops training after the current batch
# and keeps the network as it stands, so the cells below still work. With
# `--tensorboard`, the loss of each batch, the loss and test accuracy of each
# epoch, some training images and the network's graph go to `runs/`, for
# TensorBoard to draw while it trains (the README says how to open it).

# %%
torch.manual_seed(settings.seed)
model = DigitNet(settings.channels).to(device, memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
steps_per_epoch = -(-len(train_images) // settings.batch_size)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr,
                                                total_steps=settings.epochs * steps_per_epoch)
history = {"loss": [], "accuracy": []}
writer = None
if settings.tensorboard:
    from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it needs the tensorboard package

    writer = SummaryWriter(HERE / "runs" / f"{settings.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    writer.add_images("training images", train_set.data[:32, None].float() / 255)
    writer.add_graph(model.eval(), train_images[:8])
start = time.perf_counter()
with StopRequest() as ctrl_c:
    for epoch in range(1, settings.epochs + 1):
        losses = train_one_epoch(model, optimizer, scheduler, train_images, train_labels, settings.batch_size,
                                 settings.augment, progress=f"epoch {epoch}", ctrl_c=ctrl_c, writer=writer,
                                 steps_before=len(history["loss"]))
        history["loss"] += losses
        history["accuracy"].append(accuracy(predict(model, test_images), test_labels))
        epoch_loss = sum(losses) / max(len(losses), 1)
        if writer:
            writer.add_scalar("loss/epoch", epoch_loss, epoch)
            writer.add_scalar("accuracy/test", history["accuracy"][-1], epoch)
        print(f"epoch {epoch}: training loss {epoch_loss:.4f}, test accuracy {history['accuracy'][-1]:.2f} %")
        if ctrl_c.requested:
            print(f"Stopped by Ctrl-C in epoch {epoch} of {settings.epochs}, after {len(losses)} of "
                  f"{steps_per_epoch} batches. The network keeps what it has learned so far.")
            break
training_seconds = time.perf_counter() - start
if writer:
    writer.close()
    print(f"TensorBoard log: {readable(Path(writer.log_dir))}")
if ctrl_c.requested and not IN_NOTEBOOK:
    sys.exit(130)

# %% [markdown]
# ## The learning curve
#
# The training loss of every batch, smoothed, should fall steeply and then
# level off; the test accuracy after each epoch shows how well that learning
# carries over to digits the network has never seen.

# %%
steps = pd.Series(history["loss"], index=pd.RangeIndex(1, len(history["loss"]) + 1) / steps_per_epoch)
figure, loss_axis = plt.subplots(figsize=(8, 4))
loss_axis.plot(steps, color="lightsteelblue", label="training loss, each batch")
loss_axis.plot(steps.rolling(max(1, steps_per_epoch // 10), center=True, min_periods=1).mean(),
               color="navy", label="training loss, smoothed")
loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log")
accuracy_axis = loss_axis.twinx()
epochs_done = range(1, len(history["accuracy"]) + 1)
accuracy_axis.plot(epochs_done, history["accuracy"], "o-", color="darkorange",
                   label="test accuracy")
accuracy_axis.set(ylabel="test accuracy (%)", ylim=(min(history["accuracy"]) - 1, 100))
accuracy_axis.annotate(f"{history['accuracy'][-1]:.2f} %", (epochs_done[-1], history["accuracy"][-1]),
                       textcoords="offset points", xytext=(-8, 8), ha="right", color="darkorange")
figure.legend(loc="upper center", bbox_to_anchor=(0.5, 0), ncol=3, frameon=False)
loss_axis.set_title("Learning curve")
show(figure, "learning_curve")

# %% [markdown]
# ## Which digits does it confuse? The confusion matrix
#
# Accuracy is one number; the confusion matrix shows where the errors are. Row
# *i*, column *j* counts the test digits known to be *i* that the network read
# as *j*: the diagonal holds the right answers, every other cell a kind of
# mistake.

# %%
def confusion_counts(known, predicted, names=DATASETS["mnist"][2], noun="digit"):
    """A table of counts: rows are the known classes, columns the predicted ones."""
    classes = len(names)
    counts = torch.bincount(known * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    return pd.DataFrame(counts.cpu().numpy(), index=pd.Index(names, name=f"Known {noun}"),
                        columns=pd.Index(names, name=f"Predicted {noun}"))


predicted = predict(model, test_images)
test_accuracy = accuracy(predicted, test_labels)
noun = "digit" if settings.dataset == "mnist" else "class"
confusion = confusion_counts(test_labels, predicted, class_names, noun)
figure, ax = plt.subplots(figsize=(8, 6.5))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
ax.set(xlabel=f"Predicted {noun}", ylabel=f"Known {noun}",
       title=f"Confusion matrix: {test_accuracy:.2f} % of {len(test_labels):,} test {items} right")
show(figure, "confusion_matrix")
pairs = confusion.stack()
mistakes = pairs[pairs.index.get_level_values(0) != pairs.index.get_level_values(1)]
print("Most frequent mistakes (known → predicted: count):")
print(", ".join(f"{known} → {guess}: {n}" for (known, guess), n in mistakes.nlargest(5).items() if n))

# %% [markdown]
# The same counts, read per digit: *precision* is how often a prediction of
# that digit is right, *recall* how many of that digit's test images were
# found. scikit-learn's report computes both from the known and predicted
# labels.

# %%
print(classification_report(test_labels.cpu(), predicted.cpu(), target_names=class_names, digits=3))

# %% [markdown]
# ## The misclassified digits
#
# Behind each off-diagonal count are real images. Keep the indexes of the test
# digits the network got wrong and look at them: some are the network's
# fault, others are so badly written (or even mislabelled) that a person
# would hesitate too.

# %%
def misclassified_indexes(known, predicted):
    """The positions of the test digits whose prediction differs from the known label."""
    return torch.nonzero(known != predicted).flatten().cpu()


wrong = misclassified_indexes(test_labels, predicted)
print(f"{len(wrong)} of {len(test_labels):,} test {items} misclassified")
if len(wrong):
    first_wrong = wrong[:40]
    captions = [f"{class_names[test_set.targets[i]]} → {class_names[predicted[i]]}" for i in first_wrong.tolist()]
    figure = draw_digits(test_set.data[first_wrong], captions, f"Misclassified test {items} (known → predicted)",
                         color="firebrick")
    show(figure, "misclassified_digits")

# %% [markdown]
# ## Saving the model and loading it back
#
# A trained network is just its weights. `state_dict()` holds them by name;
# saving that (rather than the whole Python object) keeps the file loadable
# by any code that builds the same `DigitNet`, and `weights_only=True` loads
# nothing but tensors, so a checkpoint from elsewhere cannot run code.
# `load_model` explains a file that does not fit instead of failing with a
# long error. Loaded into a fresh network, the weights must give exactly the
# same accuracy.

# %%
class CheckpointError(Exception):
    pass


def load_model(path, device):
    """A DigitNet with the weights saved in `path`, or a CheckpointError that says why they do not load."""
    # The width of a saved network shows in its weights, so --channels need not match to load it.
    try:
        weights = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"There is no checkpoint at {readable(path)}: run the lesson to train and save one.")
    except Exception as error:  # torch reports a damaged file in many ways; the learner needs just one sentence
        raise CheckpointError(f"{readable(path)} is damaged, incomplete, or not a PyTorch checkpoint "
                              f"({str(error).splitlines()[0][:120]}). Delete it and run the lesson again.")
    first_layer = weights.get("features.0.weight") if isinstance(weights, dict) else None
    model = DigitNet(first_layer.shape[0] if first_layer is not None else 16)
    model = model.to(device, memory_format=torch.channels_last)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{readable(path)} holds the weights of a different network, which do not fit "
                              f"DigitNet ({str(error).splitlines()[-1].strip()[:120]}). "
                              f"Run the lesson again to save a matching one.")
    return model


checkpoint = settings.out_dir / "mnist_cnn.pt"
if can_save and save_file(checkpoint, lambda partial: torch.save(model.state_dict(), partial)):
    try:
        restored = load_model(checkpoint, device)
    except CheckpointError as error:
        stop(str(error))
    print(f"Saved the model to {readable(checkpoint)}; loaded back, it scores "
          f"{accuracy(predict(restored, test_images), test_labels):.2f} % on the test {items}")

# %% [markdown]
# ## Your own handwriting
#
# Write a digit on paper, take a photo, and ask the network. It often fails
# at first, not because the network is bad but because a photo looks
# nothing like an MNIST digit. `prepare_digit` makes it into one, the way
# MNIST's digits were made:
#
# 1. **Greyscale**, from 0 (black) to 1 (white), turned upright if the
#    phone stored it on its side, and shrunk to at most 1,000 pixels a side.
# 2. **Inverted** when the ink is darker than the paper: MNIST's digits are
#    light strokes on black.
# 3. **Paper removed**: the typical grey of the image (its median) becomes
#    0 and the ink 1; shadows fainter than a fifth of the ink become 0.
# 4. **Cropped** to the ink.
# 5. **Scaled** so that the longer side is 20 pixels, keeping the digit's
#    shape.
# 6. **Centred** in a 28 × 28 frame by its centre of mass (the average
#    position of the ink), as MNIST's digits were.
#
# Put your photos in a folder and run `python mnistlab.py --predict
# my_digit.jpg` (several paths are fine), or set `MNISTLAB_PREDICT` before
# starting the notebook. Without one, this cell reads
# `sample/photo_of_a_7.jpg`, a photo-like picture of an MNIST test digit.

# %%
def prepare_digit(photo):
    """A 28 × 28 tensor of a photo or scan of one handwritten digit, made the way MNIST's digits were."""
    photo = ImageOps.exif_transpose(photo).convert("L")
    photo.thumbnail((1000, 1000))
    grey = pil_to_tensor(photo)[0].float() / 255
    if grey.median() > 0.5:
        grey = 1 - grey
    paper, ink = grey.median(), grey.quantile(0.995)
    if ink - paper < 0.15:
        raise ValueError("it looks blank: no ink stands out from the paper")
    digit = ((grey - paper) / (ink - paper)).clamp(0, 1)
    digit[digit < 0.2] = 0
    rows, columns = torch.nonzero(digit, as_tuple=True)
    digit = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    height, width = (max(1, round(side * 20 / max(digit.shape))) for side in digit.shape)
    digit = F.interpolate(digit[None, None], size=(height, width), mode="bilinear", antialias=True)[0, 0]
    centre_row = (digit.sum(dim=1) * torch.arange(height)).sum() / digit.sum()
    centre_column = (digit.sum(dim=0) * torch.arange(width)).sum() / digit.sum()
    top = int((14 - centre_row).round().clamp(0, 28 - height))
    left = int((14 - centre_column).round().clamp(0, 28 - width))
    frame = torch.zeros(28, 28)
    frame[top:top + height, left:left + width] = digit
    return frame


@torch.inference_mode()
def read_digit(model, path, mean, std):
    """The prepared image of one photo and the network's ten probabilities for it."""
    try:
        image = prepare_digit(Image.open(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: there is no such file") from None
    except UnidentifiedImageError:
        raise ValueError(f"{path}: this is not an image that Pillow can read (use PNG or JPEG)") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    model.eval()
    scores = model(((image - mean) / std)[None, None].to(next(model.parameters()).device))
    return image, scores.softmax(dim=1)[0].cpu()


def show_your_digits(model, paths, mean, std):
    figure, axes = plt.subplots(len(paths), 2, figsize=(8, 2.4 * len(paths)), squeeze=False, layout="constrained",
                                gridspec_kw={"width_ratios": [1, 2.5]})
    for (picture, bars), path in zip(axes, paths):
        image, probabilities = read_digit(model, path, mean, std)
        best = int(probabilities.argmax())
        print(f"{readable(Path(path))}: {best} ({probabilities[best] * 100:.1f} %)")
        picture.imshow(image, cmap="gray")
        picture.set(title=f"{Path(path).name}, prepared", xticks=[], yticks=[])
        colors = ["firebrick" if digit == best else "lightsteelblue" for digit in range(10)]
        bars.bar(range(10), probabilities * 100, color=colors)
        bars.set(xticks=range(10), ylim=(0, 100), ylabel="probability (%)", title=f"best guess: {best}")
    show(figure, "your_digits")


if settings.dataset == "mnist":
    try:
        show_your_digits(model, settings.predict or [SAMPLE_DIR / "photo_of_a_7.jpg"], mean, std)
    except ValueError as error:
        stop(str(error))
else:
    print("Reading handwritten digits needs a network trained on MNIST: run the lesson without --dataset fashion.")

# %% [markdown]
# ## Result
#
# One line to compare runs: how long training took and how well it did.

# %%
print(f"Result: {training_seconds:.2f} s of training on {device}, test accuracy {test_accuracy:.2f} % "
      f"on {len(test_labels):,} {'sample' if on_sample else dataset.__name__} test {items}")

# %% [markdown]
# ## Where to go next
#
# - Train longer: `--epochs 8`. Watch the learning curve: the training loss
#   keeps falling, the test accuracy levels off near 99.4 %. Then add a
#   wider network (`--channels 32`) and shifted digits (`--augment`): about
#   99.45 %, in a minute on two CPU cores.
# - Try a much higher or lower `--lr`, or a tiny `--batch-size`, and see
#   what breaks.
# - Look at the gallery again: which mistakes would you have made yourself?
# - Photograph your own digits and read them with `--predict`.
# - Try a harder problem with the same code: `--dataset fashion`.
# - Watch training live with `--tensorboard`.
