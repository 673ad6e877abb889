"""Every wrong turn a learner can take ends in a plain message, with no traceback and nothing half-written."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from conftest import (FIGURES, RESULT, SCRIPT, Kernel, code_cells, figures_drawn, fresh_clone, images_in,
                      lesson_environment, offline, printed, run_lesson)


def assert_plain_stop(finished, *phrases):
    """Exit status 2, no traceback, no training started, and a message with each phrase."""
    assert finished.returncode == 2, (finished.stdout, finished.stderr)
    assert "Traceback" not in finished.stderr and "epoch 1" not in finished.stdout
    message = finished.stderr.strip()
    assert message.startswith("mnistlab: ") and len(message.splitlines()) == 1, message
    for phrase in phrases:
        assert phrase in message, message


def write_mnist_like(raw_dir, short=()):
    """MNIST-shaped files of zeros; those named in `short` cut off part-way, as by an interrupted download."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, (magic, count, header) in {"train-images-idx3-ubyte": (2051, 60_000, 16),
                                         "train-labels-idx1-ubyte": (2049, 60_000, 8),
                                         "t10k-images-idx3-ubyte": (2051, 10_000, 16),
                                         "t10k-labels-idx1-ubyte": (2049, 10_000, 8)}.items():
        body = count * (784 if magic == 2051 else 1)
        with open(raw_dir / name, "wb") as file:
            file.write(magic.to_bytes(4, "big") + count.to_bytes(4, "big") + bytes([0, 0, 0, 28] * ((header - 8) // 4)))
            file.write(bytes(body // 3 if name in short else body))


# Data

def test_a_cut_short_file_in_the_data_folder_is_named_before_training(tmp_path):
    write_mnist_like(tmp_path / "mnist" / "MNIST" / "raw", short={"t10k-images-idx3-ubyte"})
    finished = run_lesson("--data-dir", str(tmp_path / "mnist"), cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert_plain_stop(finished, "t10k-images-idx3-ubyte is damaged or incomplete", "copy whole files", "--sample")
    assert "train-images-idx3-ubyte is" not in finished.stderr


def test_a_cut_short_download_in_the_default_folder_is_named_not_downloaded_over(tmp_path):
    script = fresh_clone(tmp_path)
    write_mnist_like(tmp_path / "data" / "MNIST" / "raw", short={"train-images-idx3-ubyte"})
    finished = run_lesson(script=script, cwd=tmp_path, environment=offline(lesson_environment(tmp_path / "out")))
    assert_plain_stop(finished, "train-images-idx3-ubyte is damaged or incomplete", "run again to download")


def test_a_data_dir_that_does_not_exist_lists_what_belongs_there(tmp_path):
    finished = run_lesson("--data-dir", str(tmp_path / "nowhere"), cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert_plain_stop(finished, "no such folder", "MNIST/raw/", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def test_a_data_dir_without_the_files_lists_each_missing_one(tmp_path):
    (tmp_path / "empty" / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "empty" / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").write_bytes(b"")
    finished = run_lesson("--data-dir", str(tmp_path / "empty"), cwd=tmp_path,
                          environment=offline(lesson_environment(tmp_path / "out")))
    assert_plain_stop(finished, "train-images-idx3-ubyte is missing", "t10k-images-idx3-ubyte is missing",
                      "train-labels-idx1-ubyte is missing (its .gz is there: unpack it with gunzip)")
    assert "Could not download" not in finished.stdout  # a folder you name is read, never downloaded into


def test_sound_files_pass_the_check(lesson, tmp_path):
    write_mnist_like(tmp_path)
    assert lesson.mnist_problems(tmp_path) == []
    os.truncate(tmp_path / "train-labels-idx1-ubyte", 100)
    assert lesson.mnist_problems(tmp_path) == ["train-labels-idx1-ubyte is damaged or incomplete "
                                               "(100 bytes; the MNIST file has 60,008)"]


# Output

def test_an_output_folder_that_cannot_be_written_does_not_stop_the_lesson(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    out_dir = tmp_path / "a-file" / "outputs"
    finished = run_lesson("--sample", "--out-dir", str(out_dir), cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "unused"))
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "Warning: cannot write to a-file/outputs" in finished.stdout
    assert RESULT.search(finished.stdout) and "Saved" not in finished.stdout


def test_in_a_notebook_the_figures_still_show_when_nothing_can_be_saved(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with Kernel(lesson_environment(tmp_path / "a-file" / "outputs", sample=1)) as kernel:
        shown = 0
        for source in code_cells():
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            shown += images_in(outputs)
    assert shown == len(FIGURES)


def test_a_file_is_written_whole_or_not_at_all(lesson, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"the previous, whole file")

    def write_half_then_fail(partial):
        partial.write_bytes(b"half a fi")
        raise OSError(28, "No space left on device")

    assert lesson.save_file(path, write_half_then_fail) is False
    assert path.read_bytes() == b"the previous, whole file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# Interruption

def test_ctrl_c_in_a_terminal_stops_after_the_batch_and_exits_130(tmp_path):
    lesson = subprocess.Popen([sys.executable, str(SCRIPT), "--sample", "--epochs", "1000"], cwd=tmp_path,
                              env={**lesson_environment(tmp_path / "out"), "PYTHONUNBUFFERED": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not any(line.startswith("epoch 2:") for line in lines):
        line = lesson.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    lesson.send_signal(signal.SIGINT)
    rest, errors = lesson.communicate(timeout=60)
    assert lesson.returncode == 130
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    assert "Stopped by Ctrl-C in epoch" in rest and "of 1000" in rest
    assert not list((tmp_path / "out").glob(".*.partial"))


def test_interrupting_the_training_cell_leaves_a_model_the_next_cells_use(tmp_path):
    cells = code_cells()
    training = next(i for i, source in enumerate(cells) if "with StopRequest() as ctrl_c:" in source)
    with Kernel(lesson_environment(tmp_path, sample=1, epochs=1000)) as kernel:
        for source in cells[:training]:
            assert kernel.run(source)[0] == "ok"
        kernel.client.execute(cells[training])
        time.sleep(4)
        kernel.manager.interrupt_kernel()
        reply = kernel.client.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        for source in cells[training + 1:]:
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            assert images_in(outputs) == figures_drawn(source)
        assert RESULT.search(printed(outputs))


# Re-running

def test_every_cell_can_run_twice_and_training_starts_afresh(tmp_path):
    with Kernel(lesson_environment(tmp_path, sample=1, epochs=2)) as kernel:
        for source in code_cells():
            runs = [kernel.run(source) for _ in range(2)]
            for status, outputs in runs:
                assert status == "ok", (source[:200], outputs[-3:])
                assert images_in(outputs) == figures_drawn(source)
            if "with StopRequest() as ctrl_c:" in source:
                first, second = ([line for output in outputs if output.get("name") == "stdout"
                                  for line in output["text"].splitlines() if "test accuracy" in line]
                                 for _, outputs in runs)
                assert len(first) == 2 and first == second  # same seed, fresh model: the same two epochs


def test_run_above_after_a_restart_works(tmp_path):
    cells = code_cells()
    environment = lesson_environment(tmp_path, sample=1)
    with Kernel(environment) as kernel:
        for source in cells:
            assert kernel.run(source)[0] == "ok"
    with Kernel(environment) as kernel:  # the restarted kernel: Run Above on the confusion-matrix cell
        target = next(i for i, source in enumerate(cells) if "confusion_counts(test_labels" in source)
        for source in cells[:target + 1]:
            assert kernel.run(source)[0] == "ok"


# Checkpoints

def test_a_checkpoint_of_another_network_is_refused_plainly(lesson, tmp_path):
    path = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(lesson.CheckpointError, match="different network, which do not fit DigitNet"):
        lesson.load_model(path, torch.device("cpu"))


def test_a_truncated_checkpoint_is_refused_plainly(lesson, tmp_path):
    whole, cut = tmp_path / "whole.pt", tmp_path / "cut.pt"
    torch.save(lesson.DigitNet().state_dict(), whole)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert isinstance(lesson.load_model(whole, torch.device("cpu")), lesson.DigitNet)
    with pytest.raises(lesson.CheckpointError, match="damaged, incomplete, or not a PyTorch checkpoint"):
        lesson.load_model(cut, torch.device("cpu"))
    with pytest.raises(lesson.CheckpointError, match="There is no checkpoint"):
        lesson.load_model(tmp_path / "missing.pt", torch.device("cpu"))


# Repeatability

def test_the_same_seed_on_the_cpu_gives_the_same_result(tmp_path):
    results = [RESULT.search(run_lesson("--sample", "--seed", "7", "--device", "cpu", cwd=tmp_path,
                                        environment=lesson_environment(tmp_path / f"out{i}")).stdout)
               for i in range(2)]
    assert results[0] and results[0]["accuracy"] == results[1]["accuracy"]
