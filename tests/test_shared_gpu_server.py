"""On a shared server: a doctor's report to paste, the device you name, out of memory as one
line, and long runs that survive being cut."""

import os
import re
import shutil
import signal
import subprocess
import sys
import weakref

import pytest
import torch
from lesson_runs import (
    RESULT,
    SCRIPT,
    StartedLesson,
    lesson_environment,
    lesson_parameters,
    offline,
    run_lesson,
    training_run,
)
from run_outputs import assert_plain_stop

import mnistlab_tools as tools
from mnistlab_tools.device import busy_gpus, devices_here, least_busy_gpu, out_of_memory_stops
from mnistlab_tools.doctor import download_line
from mnistlab_tools.files import HERE
from mnistlab_tools.settings import SettingsError


def test_the_doctor_reports_what_this_machine_really_has(tmp_path):
    environment = offline(lesson_environment(tmp_path / "out", data_dir=tmp_path / "data"))
    environment["CUDA_VISIBLE_DEVICES"] = "7"
    one_core = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    report = subprocess.run([*one_core, sys.executable, str(SCRIPT), "--doctor"], cwd=tmp_path,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and report.stderr == "", report.stderr
    lines = report.stdout.splitlines()
    assert lines[0].startswith("mnistlab doctor: paste this block")
    line = {text.split(" ")[0].rstrip(":"): text for text in lines[1:]}
    assert line["Python"].startswith(f"Python {sys.version.split()[0]} at {sys.executable}")
    expected_venv = os.path.realpath(sys.prefix) == os.path.realpath(HERE / ".venv")
    assert ("(this repository's .venv)" in line["Python"]) == expected_venv
    assert line["PyTorch"].startswith(f"PyTorch {torch.__version__}, ")
    if torch.version.cuda:
        assert f"built for CUDA {torch.version.cuda}" in line["PyTorch"]
    else:
        assert "a CPU-only build" in line["PyTorch"]
    if not shutil.which("nvidia-smi"):
        assert "nvidia-smi is not installed: no NVIDIA GPU here, or no driver" in line["NVIDIA"]
        assert line["GPUs"] == "GPUs: none; the lesson trains on the CPU"
    assert line["CUDA_VISIBLE_DEVICES"] == "CUDA_VISIBLE_DEVICES: '7'"
    usable = 1 if one_core else len(os.sched_getaffinity(0))
    assert line["CPU"] == f"CPU threads: {usable} usable here, of {os.cpu_count()} on the machine"
    disks = [text for text in lines if text.startswith("Disk for the ")]
    assert [text.split(" (")[0] for text in disks] == ["Disk for the data", "Disk for the outputs"]
    for text in disks:
        free = float(re.search(r"([\d.]+) GiB free", text).group(1))
        assert abs(free - shutil.disk_usage(tmp_path).free / 2**30) < 0.5
    assert "does not answer within 3 s" in line["Download"] and "--mirror" in line["Download"]


def test_the_doctor_finds_a_mirror_that_answers(mirror, monkeypatch):  # noqa: F811
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert download_line("mnist", mirror) == f"Download address {mirror}: answers"


def test_a_device_that_is_not_here_is_named_with_those_that_are(tmp_path, capsys):
    for name in ("cuda:3", "cuda", "mps"):
        if name in devices_here() or (name == "cuda" and torch.cuda.is_available()):
            continue  # this machine has it
        with pytest.raises(SystemExit) as stopped:
            tools.pick_device(name)
        assert stopped.value.code == 2
        assert f"--device {name} was asked for, but there is no such device" in \
            capsys.readouterr().err
    # As a learner meets it: one line from the lesson, before any training.
    finished = run_lesson("--device", "cuda:3", "--sample", cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    if "cuda:3" not in devices_here():
        assert_plain_stop(finished, "--device cuda:3 was asked for, but there is no such device",
                          f"there is {', '.join(devices_here())}")


def test_auto_says_which_device_and_why(tmp_path):
    device, why = tools.pick_device("auto")
    assert str(device) == devices_here()[0]
    if device.type == "cpu":
        assert why == "PyTorch sees no GPU here (.venv/bin/python mnistlab.py --doctor says why)"
    with pytest.raises(SettingsError, match="use auto, cpu, cuda, cuda:N"):
        tools.read_settings(lesson_parameters(), ["--device", "cuda:x"], {})


@pytest.mark.parametrize("order, expected", [(None, "PCI_BUS_ID"),
                                             ("FASTEST_FIRST", "FASTEST_FIRST")])
def test_gpus_are_numbered_as_nvidia_smi_numbers_them(order, expected):
    """cuda:1 and CUDA_VISIBLE_DEVICES=1 mean nvidia-smi's GPU 1: the order is set before CUDA
    starts, unless the learner chose one."""
    environment = {k: v for k, v in os.environ.items() if k != "CUDA_DEVICE_ORDER"}
    if order:
        environment["CUDA_DEVICE_ORDER"] = order
    finished = subprocess.run(
        [sys.executable, "-c", "import os, mnistlab_tools as tools\n"
         "tools.pick_device('auto')\nprint(os.environ['CUDA_DEVICE_ORDER'])"],
        capture_output=True, text=True, env=environment, cwd=SCRIPT.parent, check=True)
    assert finished.stdout.strip() == expected


def test_auto_passes_over_a_gpu_someone_is_computing_on(tmp_path, monkeypatch):
    """A stand-in nvidia-smi shows GPU 0 busy and GPU 2 half busy; GPU 1 is idle."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text('#!/bin/sh\nprintf "0, 97\\n1, 0\\n2, 40\\n"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert busy_gpus() == {0, 2}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")  # CUDA's 0 is nvidia-smi's 2
    assert busy_gpus() == {0}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5ab1c2d3")
    assert busy_gpus() == set()
    gib = 2**30
    # The busy GPU has the most free memory (its job is small), yet the idle one is chosen.
    memory = [(70 * gib, 80 * gib), (20 * gib, 80 * gib), (60 * gib, 80 * gib)]
    assert least_busy_gpu(memory, {0, 2}) == 1
    assert least_busy_gpu(memory, {0, 1, 2}) == 0  # all busy: the most free memory
    assert least_busy_gpu(memory, set()) == 0


def test_out_of_memory_ends_in_one_line_and_gives_the_memory_back(capsys):
    held = []

    def training_step():
        activations = torch.ones(1000, 1000)
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(SystemExit) as stopped, out_of_memory_stops(torch.device("cpu"), 512):
        training_step()
    assert stopped.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message == ("mnistlab: cpu ran out of memory with batches of 512. Try a smaller "
                       "--batch-size or --channels.")
    assert held[0]() is None, "the failed step's tensors are still held"
    # The CPU's own allocator says it in other words, as a rank of lesson three on CPUs meets it.
    with pytest.raises(SystemExit) as stopped, out_of_memory_stops(torch.device("cpu"), 64):
        torch.empty(2**50, dtype=torch.uint8)  # a petabyte
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("mnistlab: cpu ran out of memory with batches of 64")
    with pytest.raises(RuntimeError, match="something else"):
        with out_of_memory_stops(torch.device("cpu"), 512):
            raise RuntimeError("something else")


def weights(path):
    return torch.load(path, weights_only=True)["weights"]


def test_a_run_cut_short_resumes_to_the_result_of_an_uncut_run(tmp_path):
    uncut = run_lesson("--sample", "--epochs", "4", cwd=tmp_path,
                       environment=lesson_environment(tmp_path / "uncut"))
    assert uncut.returncode == 0, uncut.stderr
    # A dropped SSH connection or a killed kernel: no warning, no chance to save anything.
    with StartedLesson("--sample", "--epochs", "4", cwd=tmp_path, out_dir=tmp_path / "cut") as cut:
        cut.printed_until("epoch 2:")
        cut.signal(signal.SIGKILL)
        cut.finished(60)
    training = torch.load(tmp_path / "cut" / "mnist_training.pt", weights_only=True)
    assert 1 <= training["epoch"] < 4
    resumed = run_lesson("--sample", "--epochs", "4", "--resume", cwd=tmp_path,
                         environment=lesson_environment(tmp_path / "cut"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming the run in cut/mnist_training.pt after epoch {training['epoch']} of 4" \
        in resumed.stdout
    assert "epoch 1:" not in resumed.stdout and "epoch 4:" in resumed.stdout
    # What the kill left half-written, if it came in the middle of a save, is gone too.
    assert not list((tmp_path / "cut").glob(".*partial*"))
    assert RESULT.search(resumed.stdout)["accuracy"] == RESULT.search(uncut.stdout)["accuracy"]
    for name, tensor in weights(tmp_path / "uncut" / "mnist_cnn.pt").items():
        assert torch.equal(tensor, weights(tmp_path / "cut" / "mnist_cnn.pt")[name]), name


def test_resume_with_nothing_to_resume_starts_afresh(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with training_run(tmp_path / "out", 2000, "--resume") as run:
        assert list(run.epochs())[:1] == [1]
        run.end_epoch(1, [0.5], 90.0)
    assert "Nothing to resume: there is no cut run in out/mnist_training.pt" in \
        capsys.readouterr().out
    assert (tmp_path / "out" / "mnist_training.pt").is_file()
