"""Lesson three, ddp.py, started as torchrun starts it on one machine: two CPU processes talking
through gloo. Only rank 0 prints and writes; the replicas end equal; the same seed gives the
same result; and run alone, without torchrun, it says how to start it."""

import os
import re
import subprocess
import sys
from pathlib import Path

from lesson_runs import REPO, lesson_environment
from run_outputs import assert_plain_stop

TORCHRUN = Path(sys.executable).parent / "torchrun"


def torchrun(tmp_path, out_dir, *options):
    environment = {**lesson_environment(out_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node=2",
                           str(REPO / "ddp.py"), "--sample", *options], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=300)


def test_two_ranks_train_as_one_and_rank_0_alone_speaks_and_writes(tmp_path):
    first = torchrun(tmp_path, tmp_path / "out", "--epochs", "2")
    assert first.returncode == 0 and "Traceback" not in first.stderr, first.stderr
    said = first.stdout
    assert "2 ranks, talking through gloo, each on cpu" in said
    assert said.count("epoch 1: training loss") == 1 and said.count("epoch 2: ") == 1  # rank 0
    assert "The 2 replicas' weights are equal: True" in said
    assert "Saved the network to " in said and "on 500 sample test digits" in said
    files = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert files == [".mnistlab-training.lock", "ddp_cnn.pt", "ddp_training.pt"]
    again = torchrun(tmp_path, tmp_path / "again", "--epochs", "2")
    accuracy = re.compile(r"epoch 2: training loss [\d.]+, test accuracy [\d.]+ %")
    assert accuracy.search(again.stdout)[0] == accuracy.search(said)[0]  # the same seed


def test_ddp_without_torchrun_says_how_to_start_it(tmp_path):
    environment = {name: value for name, value in lesson_environment(tmp_path).items()
                   if name not in ("RANK", "WORLD_SIZE")}
    finished = subprocess.run([sys.executable, str(REPO / "ddp.py")], cwd=tmp_path,
                              env=environment, capture_output=True, text=True, timeout=120)
    assert_plain_stop(finished, "start it with torchrun",
                      "torchrun --standalone --nproc-per-node=2 ddp.py --sample")
    assert os.listdir(tmp_path) == []  # nothing written
