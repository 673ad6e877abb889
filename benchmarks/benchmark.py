"""Seconds to 99 % on MNIST: the lesson's training against the original tutorial's recipe.

    python benchmarks/benchmark.py --data-dir data --seeds 5 --long="--epochs 8 --channels 32"
    python benchmarks/benchmark.py --sample --seeds 1 --original-epochs 1   # a quick look

Both run in this one process, on the same data and device. The lesson's recipe is its network and
training as mnistlab_saved.py holds them (the lesson's #@save cells), with the values of its
parameters cell. The original recipe is the network and training of pytorch/examples'
mnist/main.py (conv 32 and 64, fc 9216 → 128, dropout; a DataLoader with ToTensor and Normalize,
batch 64; Adadelta, lr 1.0, StepLR gamma 0.7). Training time excludes the test-set evaluation
after each epoch. The table is printed as Markdown.
"""

import argparse
import ast
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import mnistlab_saved as lesson  # noqa: E402
import mnistlab_tools as tools  # noqa: E402


def lesson_settings(options=""):
    """The lesson's settings: its parameters cell, as papermill reads it, then these options."""
    import papermill

    cell = papermill.inspect_notebook(str(REPO / "mnistlab.ipynb"))
    values = {name: ast.literal_eval(parameter["default"]) for name, parameter in cell.items()}
    return tools.read_settings(values, shlex.split(options), {})


class OriginalNet(nn.Module):
    """The network of pytorch/examples' mnist/main.py."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = self.dropout2(F.relu(self.fc1(torch.flatten(self.dropout1(x), 1))))
        return F.log_softmax(self.fc2(x), dim=1)


@dataclass
class Run:
    """One seed of one recipe: accuracy after each epoch and the training seconds up to it."""

    accuracies: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    peak_bytes: int = 0

    def seconds_to(self, target):
        reached = zip(self.seconds, self.accuracies, strict=True)
        return next((seconds for seconds, accuracy in reached if accuracy >= target), None)


class PeakMemory:
    """Peak GPU memory allocated during a run on CUDA; elsewhere left to resident_growth()."""

    def __init__(self, device):
        self.device, self.used = device, 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *_):
        if self.device.type == "cuda":
            self.used = torch.cuda.max_memory_allocated(self.device)


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_lesson(data, device, seed, settings):
    """The lesson's recipe, from its #@save cells, with its settings: tensors on the device,
    shuffled index batches, DigitNet channels last, Adam with a one-cycle schedule."""
    train_images, train_labels, test_images, test_labels = data
    model = lesson.fresh_network(settings.channels, seed, device)
    steps_per_epoch = -(-len(train_images) // settings.batch_size)
    optimizer, scheduler = lesson.one_cycle_adam(model, settings.lr,
                                                 settings.epochs * steps_per_epoch)
    run, trained = Run(), 0.0
    with PeakMemory(device) as memory:
        for _ in range(settings.epochs):
            synchronize(device)
            start = time.perf_counter()
            batches = lesson.shuffled_batches(train_images, train_labels, settings.batch_size)
            lesson.train_one_epoch(model, optimizer, scheduler, batches, settings.augment)
            synchronize(device)
            trained += time.perf_counter() - start
            run.seconds.append(trained)
            run.accuracies.append(lesson.accuracy(lesson.predict(model, test_images), test_labels))
    run.peak_bytes = memory.used
    return run


def train_original(data_root, device, seed, max_epochs, target):
    """pytorch/examples' recipe, epoch after epoch until it reaches the target or max_epochs."""
    normalise = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    train_set = datasets.MNIST(data_root, train=True, transform=normalise)
    test_set = datasets.MNIST(data_root, train=False, transform=normalise)
    loader_options = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    torch.manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True, **loader_options)
    test_loader = DataLoader(test_set, batch_size=1000, **loader_options)
    model = OriginalNet().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    run, trained = Run(), 0.0
    with PeakMemory(device) as memory:
        while len(run.accuracies) < max_epochs and not run.seconds_to(target):
            synchronize(device)
            start = time.perf_counter()
            model.train()
            for images, labels in train_loader:
                images, labels = images.to(device), labels.to(device)
                optimizer.zero_grad()
                F.nll_loss(model(images), labels).backward()
                optimizer.step()
            scheduler.step()
            synchronize(device)
            trained += time.perf_counter() - start
            run.seconds.append(trained)
            model.eval()
            with torch.no_grad():
                right = sum(
                    (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
                    for x, y in test_loader
                )
            run.accuracies.append(100 * right / len(test_set))
    run.peak_bytes = memory.used
    return run


def whole_run_seconds(data_dir, sample):
    """Wall time of `python mnistlab.py` with its defaults, imports and figures included."""
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        finished = subprocess.run(
            [
                sys.executable,
                str(REPO / "mnistlab.py"),
                "--out-dir",
                out_dir,
                *(["--sample"] if sample else ["--data-dir", str(data_dir)]),
            ],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    if finished.returncode:
        sys.exit(f"python mnistlab.py failed:\n{finished.stderr}")
    return seconds, [line for line in finished.stdout.splitlines() if line.startswith("Result:")][0]


def cpu_peak_bytes(recipe, options, long=None):
    """One seed of a recipe in a fresh process: how far its resident memory rose above the data.

    Memory freed inside one process stays resident, so on the CPU each recipe is measured alone."""
    finished = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure-memory",
            recipe,
            "--data-dir",
            str(options.data_dir),
            *(["--sample"] if options.sample else []),
            *([f"--long={long}"] if long else []),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(finished.stdout.split()[-1])


def summary_row(name, device, runs, target, peak_bytes):
    accuracies = [run.accuracies[-1] for run in runs]
    reached = [run.seconds_to(target) for run in runs if run.seconds_to(target) is not None]
    epochs = statistics.mean(len(run.seconds) for run in runs)
    per_epoch = statistics.mean(run.seconds[-1] / len(run.seconds) for run in runs)
    to_target = (f"{statistics.mean(reached):.2f}" if reached else "not reached") + (
        f" ({len(reached)} of {len(runs)} seeds)" if len(reached) < len(runs) else ""
    )
    spread = f" ± {statistics.stdev(accuracies):.2f}" if len(runs) > 1 else ""
    memory = peak_bytes / 2**20
    # A seed that never reached the target took at least all its training time: a lower bound.
    at_least = statistics.mean(run.seconds_to(target) or run.seconds[-1] for run in runs)
    accuracy = f"{statistics.mean(accuracies):.2f}{spread}"
    accuracy += f" ({min(accuracies):.2f}–{max(accuracies):.2f})"
    return (
        f"| {name} | {device} | {len(runs)} | {epochs:g} | {per_epoch:.2f} | {to_target} "
        f"| {accuracy} | {memory:.0f} MB |"
    ), (at_least, len(reached) == len(runs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=REPO / "data", help="folder holding MNIST/raw/"
    )
    parser.add_argument(
        "--sample", action="store_true", help="use the committed sample (a quick smoke run)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per recipe (default: 5)")
    parser.add_argument(
        "--original-seeds", type=int, help="seeds for the original recipe (default: as --seeds)"
    )
    parser.add_argument(
        "--original-epochs", type=int, default=4, help="most epochs for the original recipe"
    )
    parser.add_argument(
        "--long",
        metavar="OPTIONS",
        help="also run the lesson with these options, "
        'written --long="--epochs 8 --channels 32 --augment"',
    )
    parser.add_argument(
        "--target", type=float, default=99.0, help="test accuracy to reach, in %% (default: 99.0)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--whole-run", action="store_true", help="also time a whole `python mnistlab.py` run"
    )
    parser.add_argument("--measure-memory", choices=["lesson", "original"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    device = torch.device(options.device)
    root = REPO / "sample" if options.sample else options.data_dir
    train_set, test_set = datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)
    mean, std = lesson.pixel_mean_and_std(train_set)
    data = (*lesson.to_tensors(train_set, mean, std, device),
            *lesson.to_tensors(test_set, mean, std, device))
    if options.measure_memory:
        one_epoch = lesson_settings((options.long or "") + " --epochs 1")  # before measuring
        before = resident_bytes()
        if options.measure_memory == "lesson":
            train_lesson(data, device, 0, one_epoch)
        else:
            train_original(root, device, 0, 1, 100.0)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
        return
    name = f"{'sample' if options.sample else 'full MNIST'}, "
    name += f"{len(train_set):,} + {len(test_set):,} digits"
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu{threads}"
    print(f"{name}; torch {torch.__version__}; {where}; rows as they finish:", file=sys.stderr)

    def peak_bytes(recipe, runs, long=None):
        if device.type == "cuda":
            return max(run.peak_bytes for run in runs)
        return cpu_peak_bytes(recipe, options, long)

    rows = []
    lesson_runs = [
        train_lesson(data, device, seed, lesson_settings())
        for seed in range(options.seeds)
    ]
    row, lesson_seconds = summary_row(
        "lesson, defaults", where, lesson_runs, options.target, peak_bytes("lesson", lesson_runs)
    )
    rows.append(row)
    print(row, file=sys.stderr)
    if options.long:
        long_settings = lesson_settings(options.long)
        long_runs = [
            train_lesson(data, device, seed, long_settings) for seed in range(options.seeds)
        ]
        rows.append(
            summary_row(
                f"lesson, {options.long}",
                where,
                long_runs,
                options.target,
                peak_bytes("lesson", long_runs, options.long),
            )[0]
        )
        print(rows[-1], file=sys.stderr)
    original_runs = [
        train_original(root, device, seed, options.original_epochs, options.target)
        for seed in range(options.original_seeds or options.seeds)
    ]
    row, original_seconds = summary_row(
        "original (pytorch/examples)",
        where,
        original_runs,
        options.target,
        peak_bytes("original", original_runs),
    )
    rows.append(row)
    print(row, file=sys.stderr)

    print(f"\nData: {name}. Device: {where}. torch {torch.__version__}.\n")
    print(
        f"| recipe | device | seeds | epochs | s per epoch | s to {options.target:g} % "
        "| test accuracy % (mean ± sd, min–max) | peak memory |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    (lesson_seconds, lesson_reached), (original_seconds, original_reached) = (
        lesson_seconds,
        original_seconds,
    )
    if lesson_reached:
        ratio = original_seconds / lesson_seconds
        print(
            f"\nThe lesson reaches {options.target:g} % {ratio:.1f} times sooner than the original "
            "recipe"
            + (
                "."
                if original_reached
                else f" at least: not every seed of the original reached {options.target:g} % "
                f"in {options.original_epochs} epochs, so its time counts all its epochs."
            )
        )
    if options.whole_run:
        seconds, result = whole_run_seconds(options.data_dir, options.sample)
        print(f"\nA whole `python mnistlab.py` run took {seconds:.1f} s of wall time ({result}).")


if __name__ == "__main__":
    main()
