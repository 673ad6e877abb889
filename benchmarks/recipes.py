"""The two recipes benchmarks/benchmark.py times, each seed a Run: the lesson's, from its #@save
cells in mnistlab_saved.py, and the original tutorial's, pytorch/examples' mnist/main.py (conv 32
and 64, fc 9216 → 128, dropout; a DataLoader with ToTensor and Normalize, batch 64; Adadelta,
lr 1.0, StepLR gamma 0.7). Training time excludes the test-set evaluation after each epoch."""

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import mnistlab_saved as lesson
import mnistlab_tools as tools


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


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probed(batches, model, test_images, test_labels, steps_per_epoch):
    """The batches, with the test accuracy read on the lesson's 400 test digits before some of
    them, as its Run reads it for the learning curve."""
    readings = tools.probe_batches(steps_per_epoch)
    for number, batch in enumerate(batches):
        if number in readings:
            lesson.accuracy(lesson.predict(model, test_images[:400]), test_labels[:400])
            model.train()
        yield batch


def train_lesson(data, device, seed, settings, probes=True):
    """The lesson's recipe, from its #@save cells, with its settings: tensors on the device,
    shuffled index batches, DigitNet channels last, Adam with a one-cycle schedule, and the test
    accuracy read ten times an epoch for the learning curve (probes)."""
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
            if probes:
                batches = probed(batches, model, test_images, test_labels, steps_per_epoch)
            if settings.augment:  # lesson two's other pens
                batches = lesson.with_other_pens(batches)
            lesson.train_one_epoch(model, optimizer, scheduler, batches)
            synchronize(device)
            trained += time.perf_counter() - start
            run.seconds.append(trained)
            run.accuracies.append(lesson.accuracy(lesson.predict(model, test_images), test_labels))
    run.peak_bytes = memory.used
    return run


def trained_network(train_set, mean, std, seed, settings):
    """A network trained by lesson two's recipe, from its #@save cells, on the CPU: lesson one's,
    with other pens if `settings.augment`."""
    images, labels = lesson.to_tensors(train_set, mean, std, torch.device("cpu"))
    model = lesson.fresh_network(settings.channels, seed, torch.device("cpu"))
    steps = -(-len(images) // settings.batch_size)
    optimizer, scheduler = lesson.one_cycle_adam(model, settings.lr, settings.epochs * steps)
    for _ in range(settings.epochs):
        batches = lesson.shuffled_batches(images, labels, settings.batch_size)
        lesson.train_one_epoch(model, optimizer, scheduler,
                               lesson.with_other_pens(batches) if settings.augment else batches)
    return model


def lesson_two_parser(description):
    """The options of the benchmarks that train lesson two's recipe: the data, the seeds, and the
    lesson's options to train with."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent.parent / "data",
                        help="folder holding MNIST/raw/")
    parser.add_argument("--sample", action="store_true", help="use the committed sample")
    parser.add_argument("--seeds", type=int, default=5, help="networks trained (default: 5)")
    parser.add_argument("--options", default="", help="the lesson's options to train with, "
                        'written --options="--no-augment"')
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="also write the table to FILE, for the pages to quote from")
    return parser


def lesson_settings(lesson, options=""):
    """A lesson's settings (lesson: mnistlab or handwriting): the values of its parameters cell,
    as the package declares them (a test keeps the cells equal to it), then these options."""
    return tools.read_settings(None, shlex.split(options), {}, lesson)


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


def record(path, report):
    """The report, as a table the pages quote from: when, on what, and by which command."""
    command = shlex.join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    processor = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "an unknown processor")
    header = [f"# {path.stem}", "", f"Measured on {time.strftime('%Y-%m-%d')}, on {processor} "
              f"({os.cpu_count()} cores seen), with `.venv/bin/python {command}`:", ""]
    Path(path).write_text("\n".join(header + report) + "\n")
