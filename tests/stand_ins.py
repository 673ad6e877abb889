"""Stand-ins for what a learner's server has and this machine lacks: an nvidia-smi that answers
--query-gpu as the real one does, for the GPUs and driver a test describes; a rocm-smi that
answers --json as AMD's does; a PyTorch version file of a ROCm build."""

import json
import sys
from dataclasses import dataclass


@dataclass
class Gpu:
    name: str
    capability: str  # nvidia-smi's compute_cap: "7.0"
    free_mib: int = 15_000
    total_mib: int = 16_384
    utilization: int = 0


V100 = Gpu("Tesla V100-SXM2-16GB", "7.0")
GTX_1080_TI = Gpu("NVIDIA GeForce GTX 1080 Ti", "6.1", 10_900, 11_264)
T4 = Gpu("Tesla T4", "7.5", 14_900, 15_360)
A100 = Gpu("NVIDIA A100-SXM4-40GB", "8.0", 39_000, 40_960)
K80 = Gpu("Tesla K80", "3.7", 11_000, 11_441)

# Drivers by the CUDA version their nvidia-smi header shows, as real servers have them.
DRIVERS = {"13.0": "580.65.06", "12.4": "550.54.15", "12.2": "535.104.05", "11.8": "520.61.05",
           "11.4": "470.82.01", "10.2": "440.33.01"}

SCRIPT = '''#!{python}
import sys
GPUS = {gpus!r}
DRIVER, CUDA, KNOWS_CAPABILITY = {driver!r}, {cuda!r}, {knows_capability!r}
query = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--query-gpu=")), None)
if query is None:
    print(f"| NVIDIA-SMI {{DRIVER}}   Driver Version: {{DRIVER}}   CUDA Version: {{CUDA}} |")
    sys.exit(0)
fields = query.split(",")
if "compute_cap" in fields and not KNOWS_CAPABILITY:
    print('Field "compute_cap" is not a valid field to query.')
    sys.exit(2)
for index, gpu in enumerate(GPUS):
    values = dict(gpu, index=index, driver_version=DRIVER)
    print(", ".join(str(values[field]) for field in fields))
'''


def stand_in_nvidia_smi(folder, cuda, gpus, knows_capability=True):
    """An nvidia-smi in `folder` (put it first on PATH) for these GPUs, on a driver whose header
    shows CUDA Version `cuda`; knows_capability False: a driver older than 510, which refuses
    the compute_cap field."""
    rows = [{"name": gpu.name, "compute_cap": gpu.capability, "memory.free": gpu.free_mib,
             "memory.total": gpu.total_mib, "utilization.gpu": gpu.utilization,
             "uuid": f"GPU-{index:08x}-5bd3-1d2a-9f0c-41a2d4c5e6f7"}
            for index, gpu in enumerate(gpus)]
    fake = folder / "nvidia-smi"
    fake.write_text(SCRIPT.format(python=sys.executable, gpus=rows,
                                  driver=DRIVERS.get(cuda, "550.54.15"), cuda=cuda,
                                  knows_capability=knows_capability))
    fake.chmod(0o755)
    return fake


# rocm-smi --showproductname --showmeminfo vram --json, as ROCm 6 prints it for an MI210.
MI210 = {"VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "11059200",
         "Card Series": "Aldebaran/MI200 [Instinct MI210]", "Card Model": "0x740f",
         "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D67301V",
         "Subsystem ID": "0x0c34", "Device Rev": "0x02", "Node ID": "2", "GUID": "11460",
         "GFX Version": "gfx90a"}


def stand_in_rocm_smi(folder, cards):
    """A rocm-smi in `folder` (put it first on PATH) that lists these cards, as JSON."""
    fake = folder / "rocm-smi"
    listed = {f"card{index}": card for index, card in enumerate(cards)}
    fake.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(listed, indent=4))})\n")
    fake.chmod(0o755)
    return fake


def stand_in_torch(folder, version, cuda=None, hip=None):
    """A package `torch` in `folder` (put it on PYTHONPATH) whose version.py says what a build
    says of itself: all the doctor reads of PyTorch, which it never imports."""
    package = folder / "torch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "version.py").write_text(
        f"__version__ = '{version}'\ndebug = False\ncuda: Optional[str] = {cuda!r}\n"
        f"git_version = '0'\nhip: Optional[str] = {hip!r}\n")
    return package


# nvidia-smi as it answers when it is in trouble: hung, or after a driver update without a reboot
HUNG = "#!/bin/sh\nexec sleep 60\n"
MISMATCH = ("#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch'\n"
            "echo 'NVML library version: 580.95'\nexit 18\n")


def troubled_nvidia_smi(folder, script):
    """An nvidia-smi in `folder` that answers with `script` (HUNG, MISMATCH)."""
    fake = folder / "nvidia-smi"
    fake.write_text(script)
    fake.chmod(0o755)
    return fake
