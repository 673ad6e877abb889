"""Seconds to 99 % on MNIST: the lesson's training against the original tutorial's recipe.

    python benchmarks/benchmark.py --data-dir data --seeds 5 --long="--epochs 8 --channels 32"
    python benchmarks/benchmark.py --sample --seeds 1 --original-epochs 1   # a quick look

Both run in this one process, on the same data and device: the lesson's recipe, from its #@save
cells, with the values of its parameters cell, and the original recipe of pytorch/examples'
mnist/main.py (both in recipes.py, beside this script). Training time excludes the test-set
evaluation after each epoch. The table is printed as Markdown.
"""

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torchvision import datasets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import mnistlab_saved as lesson  # noqa: E402
from recipes import lesson_settings, record, train_lesson, train_original  # noqa: E402  (in benchmarks/)


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


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


def accuracy_text(runs):
    accuracies = [run.accuracies[-1] for run in runs]
    spread = f" ± {statistics.stdev(accuracies):.2f}" if len(runs) > 1 else ""
    return (f"{statistics.mean(accuracies):.2f}{spread} "
            f"({min(accuracies):.2f}–{max(accuracies):.2f})")


def summary_row(name, device, runs, target, peak_bytes):
    reached = [run.seconds_to(target) for run in runs if run.seconds_to(target) is not None]
    epochs = statistics.mean(len(run.seconds) for run in runs)
    per_epoch = statistics.mean(run.seconds[-1] / len(run.seconds) for run in runs)
    to_target = f"{statistics.mean(reached):.2f}" if reached else "not reached"
    if len(reached) < len(runs):
        to_target += f" ({len(reached)} of {len(runs)} seeds)"
    # A seed that never reached the target took at least all its training time: a lower bound.
    at_least = statistics.mean(run.seconds_to(target) or run.seconds[-1] for run in runs)
    return (
        f"| {name} | {device} | {len(runs)} | {epochs:g} | {per_epoch:.2f} | {to_target} "
        f"| {accuracy_text(runs)} | {peak_bytes / 2**20:.0f} MB |"
    ), (at_least, len(reached) == len(runs))


def option_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data",
                        help="folder holding MNIST/raw/")
    parser.add_argument("--sample", action="store_true",
                        help="use the committed sample (a quick smoke run)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per recipe (default: 5)")
    parser.add_argument("--original-seeds", type=int,
                        help="seeds for the original recipe (default: as --seeds)")
    parser.add_argument("--original-epochs", type=int, default=4,
                        help="most epochs for the original recipe")
    parser.add_argument("--long", metavar="OPTIONS", help="also run the lesson with these "
                        'options, written --long="--epochs 8 --channels 32"')
    parser.add_argument("--target", type=float, default=99.0,
                        help="test accuracy to reach, in %% (default: 99.0)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--without-probes", action="store_true",
                        help="also run the lesson without the learning curve's readings of the "
                        "test accuracy within each epoch, to see what they cost")
    parser.add_argument("--whole-run", action="store_true",
                        help="also time a whole `python mnistlab.py` run")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="also write the report to FILE, for the pages to quote from")
    parser.add_argument("--measure-memory", choices=["lesson", "original"], help=argparse.SUPPRESS)
    return parser


def measure_memory(options, data, root, device):
    """One seed of one recipe, in this process of its own: how far its memory rose."""
    one_epoch = lesson_settings("mnistlab", f"{options.long or ''} --epochs 1")  # before measuring
    before = resident_bytes()
    if options.measure_memory == "lesson":
        train_lesson(data, device, 0, one_epoch)
    else:
        train_original(root, device, 0, 1, 100.0)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)


def comparison(options, lesson_seconds, original_seconds):
    """A sentence comparing the two recipes' times to the target, or "" where the lesson's
    seeds did not all reach it."""
    (lesson_time, lesson_reached), (original_time, original_reached) = (lesson_seconds,
                                                                        original_seconds)
    if not lesson_reached:
        return ""
    caveat = "." if original_reached else (
        f" at least: not every seed of the original reached {options.target:g} % in "
        f"{options.original_epochs} epochs, so its time counts all its epochs.")
    return (f"\nThe lesson reaches {options.target:g} % {original_time / lesson_time:.1f} times "
            f"sooner than the original recipe{caveat}")


def table_rows(options, data, root, device, where):
    """Each recipe's row, printed as it finishes too, and the sentence comparing their times."""
    rows = []

    def row_of(title, recipe, runs, long=None):
        peak = (max(run.peak_bytes for run in runs) if device.type == "cuda"
                else cpu_peak_bytes(recipe, options, long))
        row, seconds = summary_row(title, where, runs, options.target, peak)
        rows.append(row)
        print(row, file=sys.stderr)
        return seconds

    defaults = lesson_settings("mnistlab")
    lesson_seconds = row_of("lesson, defaults", "lesson", [
        train_lesson(data, device, seed, defaults) for seed in range(options.seeds)])
    if options.without_probes:  # what reading the test accuracy ten times an epoch costs
        row_of("lesson, defaults, no readings within epochs", "lesson", [
            train_lesson(data, device, seed, defaults, probes=False)
            for seed in range(options.seeds)])
    if options.long:
        long_settings = lesson_settings("mnistlab", options.long)
        row_of(f"lesson, {options.long}", "lesson", [
            train_lesson(data, device, seed, long_settings) for seed in range(options.seeds)],
            options.long)
    original_seconds = row_of("original (pytorch/examples)", "original", [
        train_original(root, device, seed, options.original_epochs, options.target)
        for seed in range(options.original_seeds or options.seeds)])
    return rows, comparison(options, lesson_seconds, original_seconds)


def main():
    options = option_parser().parse_args()
    device = torch.device(options.device)
    root = REPO / "sample" if options.sample else options.data_dir
    train_set, test_set = datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)
    mean, std = lesson.pixel_mean_and_std(train_set)
    data = (*lesson.to_tensors(train_set, mean, std, device),
            *lesson.to_tensors(test_set, mean, std, device))
    if options.measure_memory:
        return measure_memory(options, data, root, device)
    name = f"{'sample' if options.sample else 'full MNIST'}, "
    name += f"{len(train_set):,} + {len(test_set):,} digits"
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu{threads}"
    print(f"{name}; torch {torch.__version__}; {where}; rows as they finish:", file=sys.stderr)
    rows, sentence = table_rows(options, data, root, device, where)
    report = [f"Data: {name}. Device: {where}. torch {torch.__version__}.", "",
              f"| recipe | device | seeds | epochs | s per epoch | s to {options.target:g} % "
              "| test accuracy % (mean ± sd, min–max) | peak memory |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |", *rows]
    if sentence:
        report += ["", sentence.strip()]
    if options.whole_run:
        seconds, result = whole_run_seconds(options.data_dir, options.sample)
        report += ["", f"A whole run of `mnistlab.py` took {seconds:.1f} s of wall time "
                      f"({result})."]
    print("\n" + "\n".join(report))
    if options.record:
        record(options.record, report)


if __name__ == "__main__":
    main()
