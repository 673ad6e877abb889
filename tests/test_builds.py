"""Every NVIDIA GPU told the truth: which PyTorch build runs on it with this driver, from the
doctor (before PyTorch is installed) and from the lesson's device choice (once it is)."""

import os
import subprocess
import sys

import pytest
import torch
from lesson_runs import fresh_clone, lesson_environment, offline
from stand_ins import Gpu, A100, GTX_1080_TI, K80, T4, V100, stand_in_nvidia_smi

from mnistlab_tools.device import chosen_device, least_busy_gpu
from mnistlab_tools.doctor import (BUILDS, capability_of, gpu_lines, gpus_seen, major, pytorch_line,
                                   runs_on)
from mnistlab_tools import device as device_module
from mnistlab_tools import doctor

INDEX = "--index-url https://download.pytorch.org/whl/"
BUILT_FOR_CUDA_13 = ("2.14.1+cu130", "13.0")


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server with the GPUs and driver a test names, and this build of PyTorch."""
    def with_gpus(cuda, gpus, built=BUILT_FOR_CUDA_13, **options):
        stand_in_nvidia_smi(tmp_path, cuda, gpus, **options)
        monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        monkeypatch.setattr(doctor, "torch_build", lambda: built)
        return gpu_lines(gpus_seen())
    return with_gpus


def test_the_default_builds_kernels_are_those_the_installed_pytorch_lists():
    if torch.version.cuda is None or major(torch.version.cuda) != 13:
        pytest.skip(f"this PyTorch is built for CUDA {torch.version.cuda}, not pip's default")
    assert BUILDS[0].kernels == tuple(torch.cuda.get_arch_list())


@pytest.mark.parametrize("kernels, capability, runs", [
    (("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), (7, 0), False),  # V100
    (("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), (6, 1), False),  # GTX 1080 Ti
    (("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), (7, 5), True),  # T4
    (("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), (8, 9), True),  # L4: sm_86's code
    (("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), (12, 1), True),  # sm_120's code
    (("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"), (6, 1), True),
    (("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"), (3, 7), False),  # K80
    (("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"), (10, 0), False),
    (("sm_90", "compute_90"), (12, 0), True),  # PTX, compiled for a newer GPU as it starts
    (("sm_90", "compute_90"), (8, 6), False),
])
def test_a_build_runs_on_a_gpu_with_kernels_for_its_architecture(kernels, capability, runs):
    assert runs_on(kernels, capability) is runs


def test_a_v100_on_a_cuda_13_driver_is_told_to_install_the_cuda_12_build(server):
    lines = server("13.0", [V100])
    assert lines[0] == ("GPU 0 (nvidia-smi's numbering): Tesla V100-SXM2-16GB, compute "
                        "capability 7.0, 14.6 of 16.0 GiB free")
    assert lines[1].startswith("GPU 0 (Tesla V100-SXM2-16GB): this PyTorch, built for CUDA "
                               "13.0, has kernels for compute capability 7.5 to 12.0 only, and "
                               "this GPU's is 7.0. Install the build for CUDA 12.6")
    assert lines[1].endswith(f"pip install torch torchvision {INDEX}cu126 && .venv/bin/pip "
                             "install -r requirements.txt")
    assert len(lines) == 2


@pytest.mark.parametrize("gpu", [GTX_1080_TI, V100])
@pytest.mark.parametrize("cuda", ["12.4", "13.0"])
def test_a_gtx_1080_ti_or_a_v100_gets_the_cuda_12_build_on_either_driver(server, cuda, gpu):
    lines = server(cuda, [gpu])
    assert f"compute capability {gpu.capability}" in lines[0]
    assert len(lines) == 2 and lines[1].endswith(f"{INDEX}cu126 && .venv/bin/pip install -r "
                                                 "requirements.txt")
    if cuda == "12.4":  # the driver is too old for this build, whatever the GPU
        assert lines[1].startswith("GPUs: PyTorch cannot use them: it is built for CUDA 13.0, "
                                   "and the driver supports CUDA 12.4 at most")


@pytest.mark.parametrize("cuda", ["12.4", "13.0"])
def test_a_v100_under_the_cuda_12_build_gets_no_warning(server, cuda):
    assert len(server(cuda, [V100], built=("2.14.1+cu126", "12.6"))) == 1


def test_a_t4_gets_no_warning(server):
    assert server("13.0", [T4]) == ["GPU 0 (nvidia-smi's numbering): Tesla T4, compute "
                                    "capability 7.5, 14.6 of 15.0 GiB free"]


def test_a_cuda_11_8_driver_gets_the_last_release_built_for_it(server):
    lines = server("11.8", [A100])
    assert lines[1] == (
        "GPUs: PyTorch cannot use them: it is built for CUDA 13.0, and the driver supports CUDA "
        "11.8 at most. Install the build for CUDA 11.8 of PyTorch 2.7.1, the newest release "
        "that has one (compute capability 5.0 to 9.0) into a fresh .venv: rm -rf .venv && "
        "python3 -m venv .venv && .venv/bin/pip install torch==2.7.1 torchvision==0.22.1 "
        f"{INDEX}cu118 && .venv/bin/pip install -r requirements.txt")


def test_an_rtx_50_on_a_cuda_12_9_driver_gets_the_cuda_12_8_build(server):
    rtx_5090 = Gpu("NVIDIA GeForce RTX 5090", "12.0", 31_000, 32_607)
    lines = server("12.9", [rtx_5090])
    assert lines[1] == (
        "GPUs: PyTorch cannot use them: it is built for CUDA 13.0, and the driver supports CUDA "
        "12.9 at most. Install the build for CUDA 12.8 of PyTorch 2.7.1, the newest release "
        "that has one (compute capability 7.5 to 12.0) into a fresh .venv: rm -rf .venv && "
        "python3 -m venv .venv && .venv/bin/pip install torch==2.7.1 torchvision==0.22.1 "
        f"{INDEX}cu128 && .venv/bin/pip install -r requirements.txt")


def test_a_gpu_no_release_has_kernels_for_trains_on_the_cpu(server):
    lines = server("11.4", [K80])
    assert "no PyTorch release the lesson supports has kernels for compute capability 3.7" in \
        lines[1] and lines[1].endswith(f"{INDEX}cpu && .venv/bin/pip install -r requirements.txt")


def test_a_driver_too_old_for_any_build_says_so(server):
    lines = server("10.2", [T4])
    assert "no build runs on it with a driver for CUDA 10.2; ask for a newer driver" in lines[1]


def test_a_driver_that_cannot_tell_the_capability_is_still_read(server):
    lines = server("13.0", [V100], knows_capability=False)
    assert lines == ["GPU 0 (nvidia-smi's numbering): Tesla V100-SXM2-16GB, 14.6 of 16.0 GiB "
                     "free"]


def test_on_a_mixed_server_the_fix_runs_on_every_gpu(server):
    lines = server("13.0", [V100, A100])
    assert len(lines) == 3 and lines[2].startswith("GPU 0 (Tesla V100-SXM2-16GB): ")
    assert f"{INDEX}cu126" in lines[2]  # cu126 has kernels for the A100 as well


def test_a_cpu_only_pytorch_beside_a_v100_gets_the_build_that_runs_on_it(server, monkeypatch):
    server("13.0", [V100], built=("2.14.1+cpu", None))
    line = pytorch_line(gpus_seen())
    assert "nvidia-smi sees a GPU" in line and line.endswith(
        f"{INDEX}cu126 && .venv/bin/pip install -r requirements.txt")


@pytest.fixture
def cuda_server(server, monkeypatch):
    """PyTorch as it sees a server with these GPUs: their capabilities, names and memory."""
    def with_gpus(gpus, busy=()):
        server("13.0", gpus)
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(BUILDS[0].kernels))
        monkeypatch.setattr(torch.version, "cuda", "13.0")
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
        monkeypatch.setattr(torch.cuda, "get_device_capability",
                            lambda gpu: capability_of(gpus[gpu].capability))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda gpu: gpus[gpu].name)
        monkeypatch.setattr(device_module, "devices_here",
                            lambda: [f"cuda:{gpu}" for gpu in range(len(gpus))] + ["cpu"])
        monkeypatch.setattr(device_module, "every_gpu_memory",
                            lambda: [(gpu.free_mib * 2**20, gpu.total_mib * 2**20)
                                     for gpu in gpus])
        monkeypatch.setattr(device_module, "busy_gpus", lambda: set(busy))
    return with_gpus


def test_auto_on_a_mixed_server_picks_the_gpu_this_build_runs_on(cuda_server):
    cuda_server([V100, T4])  # the V100 has more free memory, and no kernels in this build
    name, why = chosen_device("auto")
    assert name == "cuda:1"
    assert why == ("14.6 of 15.0 GiB free; passed over cuda:0, whose compute capability 7.0 "
                   "this PyTorch has no kernels for (.venv/bin/python mnistlab.py --doctor says "
                   "which has)")


def test_auto_with_only_gpus_this_build_cannot_run_trains_on_the_cpu(cuda_server):
    cuda_server([V100, GTX_1080_TI])
    name, why = chosen_device("auto")
    assert name == "cpu"
    assert why.startswith("PyTorch cannot use the GPUs here: this PyTorch, built for CUDA 13.0, "
                          "has kernels for compute capability 7.5 to 12.0 only, and this GPU's "
                          "is 6.1. Install the build for CUDA 12.6")


def test_naming_a_gpu_this_build_cannot_run_stops_with_the_fix(cuda_server, capsys):
    cuda_server([T4, V100])
    assert chosen_device("cuda:0") == ("cuda:0", "as asked")
    with pytest.raises(SystemExit) as stopped:
        chosen_device("cuda:1")
    assert stopped.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith("mnistlab: --device cuda:1 is a Tesla V100-SXM2-16GB, and this "
                              "PyTorch, built for CUDA 13.0, has kernels for compute capability "
                              "7.5 to 12.0 only")
    assert message.endswith(f"{INDEX}cu126 && .venv/bin/pip install -r requirements.txt")


def test_busy_and_unusable_gpus_are_both_passed_over():
    gib = 2**30
    memory = [(70 * gib, 80 * gib), (20 * gib, 80 * gib), (60 * gib, 80 * gib)]
    assert least_busy_gpu(memory, busy={1}, unusable={0: (7, 0)}) == 2
    assert least_busy_gpu(memory, busy={1, 2}, unusable={0: (7, 0)}) == 2  # all busy
    assert least_busy_gpu(memory, busy=set(), unusable={0: (7, 0), 1: (7, 0),
                                                              2: (6, 1)}) is None


@pytest.mark.parametrize("cuda, gpus, build", [
    (None, [], f"torch torchvision {INDEX}cpu"),
    ("13.0", [T4], "-r requirements.txt"),
    ("13.0", [V100], f"torch torchvision {INDEX}cu126"),
])
def test_before_anything_is_installed_the_doctor_gives_this_servers_install(tmp_path, cuda, gpus,
                                                                            build):
    """As the quick start runs it: python3 mnistlab.py --doctor in a fresh clone, in a Python with
    nothing of requirements.txt (-S: without its site-packages)."""
    clone = tmp_path / "mnistlab"
    clone.mkdir()
    script = fresh_clone(clone)
    if cuda:
        stand_in_nvidia_smi(tmp_path, cuda, gpus)
    environment = {**offline(lesson_environment(clone / "outputs")),
                   "PATH": f"{tmp_path}:/usr/bin:/bin"}
    report = subprocess.run([sys.executable, "-S", script.name, "--doctor"], cwd=clone,
                            env=environment, capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and report.stderr == "", report.stderr
    (line,) = [text for text in report.stdout.splitlines() if text.startswith("Requirements:")]
    assert line.startswith("Requirements: Missing torch, torchvision, ")
    install = line.split("into a .venv in this repository: ")[1]
    assert install.startswith("python3 -m venv .venv && .venv/bin/pip install ")
    assert build in install and install.endswith(".venv/bin/pip install -r requirements.txt")
