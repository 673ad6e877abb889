"""GPUs that are not a discrete NVIDIA card: AMD's, through a ROCm build of PyTorch, and those that
share the CPU's memory (a GB10 in a DGX Spark, a Jetson). The doctor names them, and the device
choice runs them. This machine has neither, so the tests use stand-ins that answer as the real
ones do: rocm-smi's JSON, nvidia-smi's "[N/A]", and a ROCm build's version file."""

import subprocess
import sys
from types import SimpleNamespace

import torch
from lesson_runs import SCRIPT, lesson_environment, offline
from stand_ins import MI210, Gpu, stand_in_nvidia_smi, stand_in_rocm_smi, stand_in_torch

from mnistlab_tools.device import gpus_pytorch_cannot_run, why_it_cannot_run


def doctor_lines(tmp_path, torch_folder=None):
    """The doctor's lines by their first word, with the stand-ins in tmp_path first on PATH."""
    environment = offline(lesson_environment(tmp_path / "out", data_dir=tmp_path / "data"))
    environment["PATH"] = f"{tmp_path}:{environment['PATH']}"
    if torch_folder:
        environment["PYTHONPATH"] = str(torch_folder)
    report = subprocess.run([sys.executable, str(SCRIPT), "--doctor"], cwd=tmp_path,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and report.stderr == "", report.stderr
    lines = report.stdout.splitlines()
    return {line.split(" ")[0].rstrip(":"): line for line in lines[1:]}, lines


def test_a_rocm_build_on_an_amd_server_is_named_with_its_gpus(tmp_path):
    stand_in_rocm_smi(tmp_path, [MI210])
    stand_in_torch(tmp_path / "site", "2.5.1+rocm6.2", hip="6.2.41133-dd7f95766")
    line, lines = doctor_lines(tmp_path, tmp_path / "site")
    assert line["PyTorch"] == ("PyTorch 2.5.1+rocm6.2, built for ROCm 6.2.41133: it runs AMD "
                               "GPUs, through PyTorch's cuda device names (cuda, cuda:1)")
    assert "GPU 0 (rocm-smi's numbering): Aldebaran/MI200 [Instinct MI210], gfx90a, 64.0 of " \
           "64.0 GiB free" in lines
    assert not any("CPU-only" in text or "GPUs: none" in text for text in lines)


def test_a_cpu_build_on_an_amd_server_is_told_to_install_rocms(tmp_path):
    stand_in_rocm_smi(tmp_path, [MI210])
    stand_in_torch(tmp_path / "site", "2.5.1+cpu")
    line, lines = doctor_lines(tmp_path, tmp_path / "site")
    assert "a CPU-only build - but rocm-smi sees an AMD GPU: install the ROCm build" in \
        line["PyTorch"]
    assert any(text.startswith("GPUs: PyTorch cannot use these AMD GPUs: it is not a ROCm "
                               "build") for text in lines)


def test_a_unified_memory_gpu_is_listed_not_dropped(tmp_path):
    gb10 = Gpu("NVIDIA GB10", "12.1", "[N/A]", "[N/A]")
    stand_in_nvidia_smi(tmp_path, "13.0", [gb10])
    _, lines = doctor_lines(tmp_path)
    assert "GPU 0 (nvidia-smi's numbering): NVIDIA GB10, compute capability 12.1, memory shared " \
           "with the CPU (unified memory: the machine's free memory is the GPU's)" in lines
    assert "GPUs: none; the lesson trains on the CPU" not in lines


def test_a_rocm_build_runs_the_amd_gpus_it_has_kernels_for(monkeypatch):
    """gfx90a is no NVIDIA architecture, and no reason to train on the CPU."""
    cards = ["gfx90a:sramecc+:xnack-", "gfx1036"]  # an MI210, and a desktop's integrated GPU
    monkeypatch.setattr(torch.version, "hip", "6.2.41133-dd7f95766")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["gfx90a", "gfx942", "gfx1100"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(cards))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(gcnArchName=cards[index]))
    assert gpus_pytorch_cannot_run() == {1: "gfx1036"}
    assert why_it_cannot_run("gfx1036").startswith(
        "this ROCm build of PyTorch has no kernels for gfx1036 (it has gfx90a, gfx942, gfx1100)")
