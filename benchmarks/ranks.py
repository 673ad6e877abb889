"""Lesson three on 1 rank against 2, at the same global batch: the test accuracy after one epoch
and the seconds of training, over several seeds, on this machine's CPU with gloo:

    python benchmarks/ranks.py --data-dir ../shared/data --seeds 5 \
        --record benchmarks/results/ranks.md
    python benchmarks/ranks.py --data-dir ../shared/data --seeds 2 --channels 64 \
        --record benchmarks/results/ranks-64-channels.md               # a larger network
    python benchmarks/ranks.py --sample --seeds 2                       # a quick look

Each run is `torchrun --standalone --nproc-per-node=N ddp.py`, as the lesson says to start it,
with the machine's cores shared out: 1 rank trains with every core, 2 ranks with half each. It
prints a table of the mean accuracy (the lowest and highest seed's) and the mean seconds.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]
from recipes import record  # noqa: E402  (beside this script)

EPOCH = re.compile(r"epoch 1: training loss [\d.]+, test accuracy ([\d.]+) %")
RESULT = re.compile(r"Result: ([\d.]+) s of training on (\d+) ranks?")


def one_run(ranks, seed, channels, data_options, folder):
    """(test accuracy after the epoch, seconds of training) of one run of ddp.py."""
    threads = max(1, os.cpu_count() // ranks)
    finished = subprocess.run(
        [str(Path(sys.executable).parent / "torchrun"), "--standalone",
         f"--nproc-per-node={ranks}", str(REPO / "ddp.py"), *data_options, "--epochs", "1",
         "--seed", str(seed), "--channels", str(channels), "--threads", str(threads),
         "--out-dir", str(folder)],
        env={**os.environ, "OMP_NUM_THREADS": str(threads)}, capture_output=True, text=True,
        check=True)
    return float(EPOCH.search(finished.stdout)[1]), float(RESULT.search(finished.stdout)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="the folder that holds MNIST/raw/")
    where.add_argument("--sample", action="store_true", help="the committed sample instead")
    parser.add_argument("--seeds", type=int, default=5, help="seeds for each (default: 5)")
    parser.add_argument("--channels", type=int, default=16,
                        help="feature maps of the first convolution (default: 16, the lesson's)")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="also write the table to FILE, for the pages to quote from")
    options = parser.parse_args()
    data = ["--sample"] if options.sample else ["--data-dir", str(options.data_dir.resolve())]
    rows = ["| ranks | test accuracy after one epoch, % | seconds of training |",
            "| --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as folder:
        for ranks in (1, 2):
            runs = [one_run(ranks, seed, options.channels, data, Path(folder) / f"{ranks}-{seed}")
                    for seed in range(options.seeds)]
            accuracies, seconds = [run[0] for run in runs], [run[1] for run in runs]
            rows.append(f"| {ranks} | {statistics.mean(accuracies):.2f} ({min(accuracies):.2f} "
                        f"to {max(accuracies):.2f}) | {statistics.mean(seconds):.2f} |")
    what = "the sample" if options.sample else "full MNIST"
    report = [f"Lesson three, one epoch on {what}, {options.channels} channels, global batch "
              f"128, {options.seeds} seeds "
              f"(0 to {options.seeds - 1}), on the CPU with gloo; the cores shared out among "
              f"the ranks.", "", *rows]
    print("\n".join(report))
    if options.record:
        record(options.record, report)


if __name__ == "__main__":
    main()
