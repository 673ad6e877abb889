"""GPUs that are not a discrete NVIDIA card: AMD's, through a ROCm build of PyTorch, and those that
share the CPU's memory (a GB10 in a DGX Spark, a Jetson); and what hides a GPU from the doctor:
an nvidia-smi that hangs or meets a driver updated without a restart, CUDA_VISIBLE_DEVICES, a
container's CPU quota. The doctor names each, and the device choice runs what it can. This
machine has no GPU, so the tests use stand-ins that answer as the real ones do: rocm-smi's JSON,
nvidia-smi's "[N/A]" and its errors, and a ROCm build's version file."""

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from lesson_runs import SCRIPT, lesson_environment, offline
from stand_ins import (A100, HUNG, MI210, MISMATCH, Gpu, stand_in_nvidia_smi, stand_in_rocm_smi,
                       stand_in_torch, troubled_nvidia_smi)

from mnistlab_tools.device import chosen_device, gpus_pytorch_cannot_run, why_it_cannot_run
from mnistlab_tools import doctor
from mnistlab_tools.doctor import quota_cpus, usable_cores


def doctor_lines(tmp_path, torch_folder=None, **variables):
    """The doctor's lines by their first word, with the stand-ins in tmp_path first on PATH."""
    environment = offline(lesson_environment(tmp_path / "out", data_dir=tmp_path / "data"))
    environment["PATH"] = f"{tmp_path}:{environment['PATH']}"
    environment.update(variables)
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
    # --device cuda, as a learner asks for the GPU on an AMD server, is the MI210, not refused.
    monkeypatch.setattr("mnistlab_tools.device.devices_here", lambda: ["cuda:0", "cuda:1", "cpu"])
    assert chosen_device("cuda") == ("cuda:0", "as asked")


def test_an_nvidia_smi_that_hangs_is_said_to_hang_once(tmp_path):
    troubled_nvidia_smi(tmp_path, HUNG)
    started = time.monotonic()
    line, _ = doctor_lines(tmp_path)
    assert line["NVIDIA"] == ("NVIDIA driver: nvidia-smi did not answer within 10 s: the driver "
                              "or a GPU is stuck. Ask the server's administrator; rebooting "
                              "usually clears it")
    assert time.monotonic() - started < 40  # waited for once, not at every question


def test_a_driver_updated_without_a_restart_is_told_to_reboot(tmp_path):
    troubled_nvidia_smi(tmp_path, MISMATCH)
    line, _ = doctor_lines(tmp_path)
    assert "the NVIDIA driver was updated and the machine has not been restarted since" in \
        line["NVIDIA"] and "reboot it" in line["NVIDIA"]


@pytest.mark.parametrize("visible, hides", [
    ("-1", True), ("2", True), ("GPU-deadbeef", True),  # none of the two GPUs
    ("1", False), ("GPU-00000000", False), ("0,5", False),  # the first names one: it is seen
])
def test_cuda_visible_devices_that_hides_every_gpu_is_said_to(tmp_path, visible, hides):
    stand_in_nvidia_smi(tmp_path, "13.0", [A100, A100])
    _, lines = doctor_lines(tmp_path, CUDA_VISIBLE_DEVICES=visible)
    said = [line for line in lines if line.startswith("GPUs: CUDA_VISIBLE_DEVICES=")]
    assert bool(said) == hides, lines
    if hides:
        assert said[0].startswith(f"GPUs: CUDA_VISIBLE_DEVICES={visible!r} hides every GPU "
                                  f"from PyTorch: its first entry, {visible}, names none")


@pytest.mark.parametrize("written, cpus", [
    ({"cpu.max": "150000 100000\n"}, 2),  # docker --cpus=1.5
    ({"cpu.max": "max 100000\n"}, None),  # no quota
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
])
def test_a_containers_cpu_quota_caps_the_threads(tmp_path, written, cpus):
    for name, text in written.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert quota_cpus(tmp_path) == cpus
    if cpus:
        assert usable_cores({}, tmp_path) <= cpus


def test_a_container_without_nvidias_utilities_is_named(tmp_path, monkeypatch):
    device = tmp_path / "nvidia0"
    device.touch()  # the GPU the container was given, without nvidia-smi to ask it
    monkeypatch.setattr(doctor, "NVIDIA_DEVICE", device)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    assert doctor.driver_line().startswith(
        f"NVIDIA driver: nvidia-smi is missing, but {device} is here: this looks like a "
        f"container started without NVIDIA's utilities")
