"""A smoke run of the benchmark on the sample: it runs both recipes and prints its table (no
timing is asserted)."""

import os
import re
import subprocess
import sys

import pytest
import torch
from lesson_runs import REPO

from benchmarks.photo_like import UNSEEN_FONTS, installed_fonts


def test_the_benchmark_prints_a_row_per_recipe():
    finished = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "benchmark.py"),
            "--sample",
            "--seeds",
            "2",
            "--original-seeds",
            "1",
            "--original-epochs",
            "1",
            "--target",
            "80",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    rows = [line for line in finished.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| recipe |") and "s to 80 %" in rows[0]
    lesson, original = rows[2].split(" | "), rows[3].split(" | ")
    assert lesson[0] == "| lesson, defaults" and lesson[2] == "2" and "±" in lesson[6]
    assert original[0] == "| original (pytorch/examples)" and original[2] == "1"
    assert lesson[7].endswith("MB |") and original[7].endswith("MB |")


def test_the_startup_benchmark_times_the_three_quick_answers():
    finished = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "startup.py"), "--runs", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    rows = [line for line in finished.stdout.splitlines() if line.startswith("| `python")]
    assert [row.split("`")[1] for row in rows] == [
        "python mnistlab.py --help", "python mnistlab.py --doctor", "python predict.py --help"]
    assert all(float(row.split("|")[2]) > 0 for row in rows)


def test_the_handwriting_benchmark_reads_each_kind_of_change():
    finished = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "handwriting.py"), "--sample", "--seeds", "1",
         "--photos", "50", "--options=--epochs 1"],
        capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    rows = dict(line.strip("| ").split(" | ") for line in finished.stdout.splitlines()
                if line.startswith("| ") and "---" not in line and "test digits |" not in line)
    fonts = len(installed_fonts())
    assert len(rows) == 12 + 3 * bool(fonts) and "photos (50), through prepare_digit" in rows
    assert not fonts or f"{fonts} handwriting fonts, 10 pixels bolder" in rows
    as_they_are, thickest = float(rows["as they are"]), float(
        rows["strokes 2 pixels thicker (5 × 5 max)"])
    assert thickest < as_they_are  # what the benchmark is for: another pen reads worse


def test_the_other_writers_benchmark_reads_each_digit_of_each_group_of_writers():
    finished = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "other_writers.py"), "--sample", "--seeds",
         "1", "--bends", "0", "--options=--epochs 1"],
        capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    lines = [line.strip("| ").split(" | ") for line in finished.stdout.splitlines()
             if line.startswith("| ") and "---" not in line]
    header, rows = lines[0], {row[0]: row[1:] for row in lines[1:]}
    groups = [f"{len(installed_fonts())} fonts read before",
              f"{len(installed_fonts(UNSEEN_FONTS))} unseen fonts"]
    expected = [group for group in groups if not group.startswith("0 ")]
    assert [name.rsplit(" (", 1)[0] for name in header[1:]] == [*expected,
                                                               "MNIST's test digits, bent"]
    assert list(rows) == [*map(str, range(10)), "all"]
    for cells in rows.values():
        for text in cells:  # "mean (lowest)", both shares in %: one seed, so both the same
            mean, lowest = (float(part.strip("()")) for part in text.split())
            assert 0 <= lowest == mean <= 100
    assert float(rows["all"][-1].split()[0]) > 50  # it reads bent digits far better than chance


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU to check")
def test_the_gpu_check_without_a_gpu_says_so_in_one_line(tmp_path):
    finished = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), tmp_path / "r"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHON": sys.executable})
    assert finished.returncode == 0 and finished.stderr == ""
    assert finished.stdout == ("gpu_check: PyTorch sees no CUDA GPU here, so there is nothing "
                               "to check; run it on a machine with one.\n")
    assert (tmp_path / "r" / "gpu_check.txt").read_text() == finished.stdout


def test_the_drawing_pad_benchmark_times_its_readings():
    finished = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pad.py"),
                               "--repeats", "6"], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert re.fullmatch(r"drawing pad, kernel side: median [\d.]+ ms, slowest [\d.]+ ms, of 6 "
                        r"readings by two networks\n", finished.stdout), finished.stdout

