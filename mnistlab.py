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
import os
import sys
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
from torch import nn
from sklearn.metrics import classification_report
from torchvision import datasets
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
    ("--device", device_name, "auto", "where to train: auto picks cuda, then mps, then cpu"),
    ("--data-dir", Path, HERE / "data", "folder for MNIST (torchvision keeps the files in MNIST/raw/ inside it)"),
    ("--sample", switch, False, "train and test on the small sample committed in the repository"),
    ("--out-dir", Path, HERE / "outputs", "folder for the figures and the trained model"),
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
        else:
            metavar = "{" + ",".join(DEVICES) + "}" if read is device_name else None
            parser.add_argument(option, type=read, default=default, metavar=metavar,
                                help=f"{help_text} (default: %(default)s; {variable})")
    return parser.parse_args(arguments)


try:
    # A kernel's own command line (-f kernel.json) is not meant for the lesson.
    settings = read_settings([] if IN_NOTEBOOK else sys.argv[1:], os.environ)
except SettingsError as error:
    stop(f"{error}. Run python mnistlab.py --help to see the settings.")
settings.out_dir.mkdir(parents=True, exist_ok=True)
print(settings)

# %% [markdown]
# ## Helpers for files and figures
#
# Three small helpers keep the rest of the lesson short. `write_atomically`
# writes to a temporary file and renames it, so an interrupted run never
# leaves half a file behind. `show` saves each figure as a PNG in the output
# folder and, in a notebook, also shows it under the cell. `draw_digits`
# lays out digits in a grid, each with a caption.


# %%
def write_atomically(path, write):
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def show(figure, name):
    path = settings.out_dir / f"{name}.png"
    write_atomically(path, lambda partial: figure.savefig(partial, format="png", dpi=120, bbox_inches="tight"))
    print(f"Saved the figure {path}")
    if IN_NOTEBOOK:
        plt.show()
    else:
        plt.close(figure)


def draw_digits(images, captions, title, color="black", columns=10):
    # One picture of many small images draws several times faster than one plot per digit.
    rows = -(-len(images) // columns)
    figure, ax = plt.subplots(figsize=(columns, 1.2 * rows + 0.3))
    for position, (image, caption) in enumerate(zip(images, captions)):
        row, column = divmod(position, columns)
        ax.imshow(image, cmap="gray_r", extent=(34 * column, 34 * column + 28, -40 * row - 28, -40 * row))
        ax.text(34 * column + 14, -40 * row + 2, caption, ha="center", va="bottom", color=color)
    ax.set(xlim=(-3, 34 * columns - 3), ylim=(-40 * rows + 8, 12), title=title)
    ax.axis("off")
    return figure


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
# ## The data
#
# `torchvision.datasets.MNIST` downloads the four MNIST files into
# `data/MNIST/raw/` the first time and reads them from there afterwards. Many
# servers cannot reach the internet; then the lesson says how to fetch the
# files by hand and goes on with a small sample of real MNIST digits that
# ships with this repository (2,000 for training, 500 for testing).

# %%
MNIST_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def load_mnist(data_dir, use_sample):
    """Return the training set, the test set, and whether they are the committed sample."""
    if not use_sample:
        try:
            return (datasets.MNIST(data_dir, train=True, download=True),
                    datasets.MNIST(data_dir, train=False, download=True), False)
        except (OSError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[-1]
            print(f"Could not download MNIST ({reason}).\n"
                  f"To use the full dataset, fetch these four files on a machine with internet access\n"
                  f"  {'  '.join(MNIST_FILES)}\n"
                  f"from https://ossci-datasets.s3.amazonaws.com/mnist/ and copy them into\n"
                  f"  {Path(data_dir).resolve() / 'MNIST' / 'raw'}\n"
                  f"Going on with the small sample in {SAMPLE_DIR}: the accuracy will be lower than on full MNIST.\n")
    return datasets.MNIST(SAMPLE_DIR, train=True), datasets.MNIST(SAMPLE_DIR, train=False), True


train_set, test_set, on_sample = load_mnist(settings.data_dir, settings.sample)
print(f"{len(train_set):,} training digits and {len(test_set):,} test digits"
      + (" from the committed sample" if on_sample else ""))

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
figure = draw_digits(train_set.data[:30], [str(label) for label in train_set.targets[:30].tolist()],
                     "Training digits and their labels")
show(figure, "sample_digits")

# %% [markdown]
# ## The network
#
# A convolution slides small learned filters (5 × 5 pixels here) over the
# image, so the same stroke detector works anywhere in it. Two rounds of
# convolution → max-pooling → batch normalisation → ReLU turn the 28 × 28
# image into 32 maps of 4 × 4 features, and a linear layer turns those into
# ten scores, one per digit.
#
# The network is small (under 20,000 weights) because MNIST is easy, and
# every choice keeps it fast: pooling comes straight after each convolution,
# so the layers after it handle a quarter of the pixels; batch normalisation
# keeps each layer's outputs on a steady scale, which allows a high learning
# rate, and it adds its own offset, so the convolutions need no bias.

# %%
class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5, bias=False),   # 28 × 28 → 24 × 24
            nn.MaxPool2d(2),                               # → 12 × 12
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=5, bias=False),  # → 8 × 8
            nn.MaxPool2d(2),                               # → 4 × 4
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.classify = nn.Linear(32 * 4 * 4, 10)

    def forward(self, images):
        return self.classify(self.features(images).flatten(1))


print(DigitNet())
print(f"{sum(p.numel() for p in DigitNet().parameters()):,} parameters")

# %% [markdown]
# ## Training and testing
#
# One epoch is one pass over the training digits in a fresh random order, a
# batch at a time: the network scores the batch, cross-entropy measures how
# wrong the scores are, backpropagation finds how each weight should change,
# and the optimiser changes it. `predict` runs the network without tracking
# gradients (`inference_mode`) and in evaluation mode, where batch
# normalisation uses the statistics it learned instead of the batch's own.

# %%
def train_one_epoch(model, optimizer, scheduler, images, labels, batch_size, progress=""):
    model.train()
    losses = []
    batches = torch.randperm(len(images), device=images.device).split(batch_size)
    for batch in tqdm(batches, desc=progress, unit="batch", disable=not progress):
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
    return torch.stack(losses).tolist()


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
# cell again starts over from a fresh, randomly initialised network.

# %%
torch.manual_seed(settings.seed)
model = DigitNet().to(device, memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
steps_per_epoch = -(-len(train_images) // settings.batch_size)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr,
                                                total_steps=settings.epochs * steps_per_epoch)
history = {"loss": [], "accuracy": []}
start = time.perf_counter()
for epoch in range(1, settings.epochs + 1):
    history["loss"] += train_one_epoch(model, optimizer, scheduler, train_images, train_labels,
                                       settings.batch_size, progress=f"epoch {epoch}")
    history["accuracy"].append(accuracy(predict(model, test_images), test_labels))
    print(f"epoch {epoch}: training loss {sum(history['loss'][-steps_per_epoch:]) / steps_per_epoch:.4f}, "
          f"test accuracy {history['accuracy'][-1]:.2f} %")
training_seconds = time.perf_counter() - start

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
accuracy_axis.plot(range(1, settings.epochs + 1), history["accuracy"], "o-", color="darkorange",
                   label="test accuracy")
accuracy_axis.set(ylabel="test accuracy (%)", ylim=(min(history["accuracy"]) - 1, 100))
accuracy_axis.annotate(f"{history['accuracy'][-1]:.2f} %", (settings.epochs, history["accuracy"][-1]),
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
def confusion_counts(known, predicted, classes=10):
    """A table of counts: rows are the known digits, columns the predicted ones."""
    counts = torch.bincount(known * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    return pd.DataFrame(counts.cpu().numpy(),
                        index=pd.RangeIndex(classes, name="Known digit"),
                        columns=pd.RangeIndex(classes, name="Predicted digit"))


predicted = predict(model, test_images)
test_accuracy = accuracy(predicted, test_labels)
confusion = confusion_counts(test_labels, predicted)
figure, ax = plt.subplots(figsize=(8, 6.5))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
ax.set(xlabel="Predicted digit", ylabel="Known digit",
       title=f"Confusion matrix: {test_accuracy:.2f} % of {len(test_labels):,} test digits right")
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
print(classification_report(test_labels.cpu(), predicted.cpu(), digits=3))

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
print(f"{len(wrong)} of {len(test_labels):,} test digits misclassified")
if len(wrong):
    shown = wrong[:40]
    figure = draw_digits(test_set.data[shown], [f"{test_set.targets[i]} → {predicted[i]}" for i in shown.tolist()],
                         "Misclassified test digits (known → predicted)", color="firebrick")
    show(figure, "misclassified_digits")

# %% [markdown]
# ## Saving the model and loading it back
#
# A trained network is just its weights. `state_dict()` holds them by name;
# saving that (rather than the whole Python object) keeps the file loadable
# by any code that builds the same `DigitNet`. Loading it into a fresh
# network must give exactly the same accuracy.

# %%
checkpoint = settings.out_dir / "mnist_cnn.pt"
write_atomically(checkpoint, lambda partial: torch.save(model.state_dict(), partial))
restored = DigitNet().to(device, memory_format=torch.channels_last)
restored.load_state_dict(torch.load(checkpoint, map_location=device, weights_only=True))
print(f"Saved the model to {checkpoint}; loaded back, it scores "
      f"{accuracy(predict(restored, test_images), test_labels):.2f} % on the test digits")

# %% [markdown]
# ## Result
#
# One line to compare runs: how long training took and how well it did.

# %%
print(f"Result: {training_seconds:.2f} s of training on {device}, test accuracy {test_accuracy:.2f} % "
      f"on {len(test_labels):,} {'sample' if on_sample else 'MNIST'} test digits")

# %% [markdown]
# ## Where to go next
#
# - Train longer: `--epochs 3`, and watch the learning curve and the test
#   accuracy.
# - Try a much higher or lower `--lr`, or a tiny `--batch-size`, and see
#   what breaks.
# - Look at the gallery again: which mistakes would you have made yourself?
