"""The doctor's report: what this machine offers the lesson, each problem with what to do, in a
block to paste when asking for help (python mnistlab.py --doctor).

Standard library only, and PyTorch is never imported: the report comes at once, and it comes in
a Python that lacks PyTorch or any other requirement, where it is needed most.
"""

import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

from .builds import (CPU, build_for, capability_of, capability_text, cannot_run,
                     install_command, install_sentence, installed_build, major,
                     no_build_reason)
from .cluster import cluster_lines, usable_cores
from .console import answer_of, display, printable, readable
from .data import DATASETS, IDX_FILES
from .files import HERE, what_is_at

REQUIREMENTS = HERE / "requirements.txt"


def python_line():
    venv = HERE / ".venv"
    here = Path(sys.executable)  # as started, not resolved: .venv/bin/python links elsewhere
    shown = here.relative_to(Path.cwd()) if here.is_relative_to(Path.cwd()) else here
    line = f"Python {sys.version.split()[0]} at {printable(str(shown))}"
    if Path(sys.prefix).resolve() == venv.resolve():
        return line + " (this repository's .venv)"
    if os.environ.get("CONDA_PREFIX") and Path(os.environ["CONDA_PREFIX"]) == Path(sys.prefix):
        return line + f" (the conda environment {Path(sys.prefix).name})"
    if venv.is_dir():
        return (line + f" - not this repository's .venv: in VS Code choose {readable(venv)} with "
                f"Select Kernel, or run {readable(venv / 'bin' / 'python')} in a terminal")
    return line + " - no .venv in this repository: see README.md#quick-start"


def missing_requirements():
    """The packages of requirements.txt that this Python does not have."""
    names = [re.match(r"[A-Za-z0-9_.-]+", line).group() for line in
             REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    missing = []
    for name in names:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def install_advice(missing):
    """What is missing, and the command that installs it into this repository's .venv: where
    there is no .venv yet, with the PyTorch build for this machine's GPUs and driver."""
    said = f"Missing {', '.join(missing)} in this Python. "
    if not (HERE / ".venv").is_dir():
        gpus = gpus_seen()
        install = install_command(driver_cuda_version(),
                                  [gpu.capability for gpu in gpus if gpu.capability],
                                  replacing=False)
        here = "" if Path.cwd() == HERE else f"cd {readable(HERE)} && "
        return (said + "Install them, with the PyTorch build for this machine, into a .venv in "
                f"this repository: {here}{install}")
    install = f"{readable(HERE / '.venv' / 'bin' / 'pip')} install -r {readable(REQUIREMENTS)}"
    return said + f"Install them into this repository's .venv with: {install}"


def requirements_line():
    missing = missing_requirements()
    return "Requirements: " + (install_advice(missing) if missing else "all installed")


def torch_build():
    """(version, cuda) of the installed PyTorch, read from its version.py without importing it
    (which takes seconds): cuda is None for a CPU-only build; both are None without PyTorch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    text = (Path(spec.submodule_search_locations[0]) / "version.py").read_text()
    version = re.search(r"^__version__\b.*=\s*'([^']+)'", text, re.M)
    cuda = re.search(r"^cuda\b.*=\s*'([\d.]+)'", text, re.M)
    return (version.group(1) if version else "?"), (cuda.group(1) if cuda else None)


def pytorch_line(driver_gpus):
    version, cuda = torch_build()
    if version is None:
        return "PyTorch: not installed in this Python (see Requirements)"
    line = f"PyTorch {version}, "
    if cuda is None:
        line += "a CPU-only build"
        if driver_gpus:
            capabilities = [gpu.capability for gpu in driver_gpus if gpu.capability]
            line += (" - but nvidia-smi sees a GPU: install the CUDA build into a fresh .venv: "
                     + install_command(driver_cuda_version(), capabilities))
        return line
    return line + f"built for CUDA {cuda}"


def nvidia_smi(*query):
    """What nvidia-smi prints for `query`, or None where it does not answer within 10 s."""
    return answer_of(["nvidia-smi", *query], 10)


def driver_cuda_version():
    """The newest CUDA version the NVIDIA driver supports, as nvidia-smi's header shows it."""
    header = nvidia_smi() or ""
    found = re.search(r"CUDA Version:\s*(\d+(?:\.\d+)*)", header)
    return found.group(1) if found else None


GPU_ROW = re.compile(r"(\d+), ([^,]+), (\d+), (\d+)(?:, (.+))?")
DRIVER_VERSION = re.compile(r"\d+(\.\d+)+")


class GpuSeen(NamedTuple):
    index: str  # nvidia-smi's numbering
    name: str
    free_mib: int
    total_mib: int
    capability: tuple | None  # (major, minor); None where the driver is too old to say


def gpus_seen():
    """Each GPU nvidia-smi lists, with its compute capability where the driver can tell it (from
    driver 510 on); a line that is not such a row (a stand-in's or a failing driver's own text)
    lists none."""
    fields = "index,name,memory.free,memory.total"
    answer = nvidia_smi(f"--query-gpu={fields},compute_cap", "--format=csv,noheader,nounits")
    if answer is None:  # an older driver refuses a field it does not know
        answer = nvidia_smi(f"--query-gpu={fields}", "--format=csv,noheader,nounits") or ""
    rows = [GPU_ROW.fullmatch(line.strip()) for line in answer.splitlines()]
    return [GpuSeen(index, name, int(free), int(total), capability_of(capability or ""))
            for index, name, free, total, capability in (row.groups() for row in rows if row)]


def driver_line():
    answer = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    if answer is None:
        return "NVIDIA driver: nvidia-smi does not answer (no NVIDIA GPU here, or no driver)"
    first = answer.splitlines()[0].strip() if answer.strip() else ""
    if not DRIVER_VERSION.fullmatch(first):
        return (f"NVIDIA driver: nvidia-smi answers, but not with a driver version "
                f"({printable(first)[:120]!r}): the driver may not be loaded; run nvidia-smi "
                f"alone to see more, and ask the server's administrator")
    cuda = driver_cuda_version()
    if cuda is None:  # nvidia-smi's header says "CUDA Version: N/A", or nothing
        return (f"NVIDIA driver {first}, which does not say which CUDA it supports (nvidia-smi "
                f"shows none): its CUDA part may be missing or not loaded; run nvidia-smi alone "
                f"to see more, and ask the server's administrator")
    return f"NVIDIA driver {first}, for CUDA {cuda} at most"


def gpu_line(gpu):
    capability = (f", compute capability {capability_text(gpu.capability)}" if gpu.capability
                  else "")
    return (f"GPU {gpu.index} (nvidia-smi's numbering): {gpu.name}{capability}, "
            f"{gpu.free_mib / 1024:.1f} of {gpu.total_mib / 1024:.1f} GiB free")


def cannot_use_lines(gpus, built, driver):
    """Why this PyTorch cannot use these GPUs, with the install of one that can: its CUDA is
    newer than the driver's, or it has no kernels for a GPU's architecture."""
    capabilities = [gpu.capability for gpu in gpus if gpu.capability]
    if major(built) > major(driver):
        if build_for(driver, capabilities) is CPU:
            return [f"GPUs: PyTorch cannot use them: it is built for CUDA {built}, and "
                    + no_build_reason(driver, min(capabilities, default=(7, 5)))
                    + f": {install_command(driver, capabilities)}"]
        return [f"GPUs: PyTorch cannot use them: it is built for CUDA {built}, and the driver "
                f"supports CUDA {driver} at most. {install_sentence(driver, capabilities)}"]
    build = installed_build(built)
    if build is None:
        return []  # an older release's build, whose kernels the table does not list
    said = ((gpu, cannot_run(build.kernels, built, driver, gpu.capability, capabilities))
            for gpu in gpus if gpu.capability)
    return [f"GPU {gpu.index} ({gpu.name}): {sentence}" for gpu, sentence in said if sentence]


def gpu_lines(gpus):
    """A line for each GPU nvidia-smi sees, and whether this PyTorch can use them."""
    if not gpus:
        return ["GPUs: none; the lesson trains on the CPU"]
    lines = [gpu_line(gpu) for gpu in gpus]
    built, driver = torch_build()[1], driver_cuda_version()
    if built and driver:
        lines += cannot_use_lines(gpus, built, driver)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        lines.append("GPUs: CUDA_VISIBLE_DEVICES is empty, which hides them all from PyTorch")
    return lines


def free_space_line(what, folder):
    existing = Path(folder).resolve()
    while what_is_at(existing) != "folder" and existing != existing.parent:
        existing = existing.parent  # the nearest folder that is there, and that you may enter
    free = shutil.disk_usage(existing).free
    line = f"Disk for the {what} ({display(Path(folder))}): {free / 2**30:.1f} GiB free"
    return line + (" - under 1 GiB: free some space, or choose another folder" if free < 2**30
                   else "")


def download_line(dataset, mirror):
    address = DATASETS[dataset].addresses(mirror)[0]
    probe = address + next(iter(IDX_FILES)) + ".gz"
    try:
        with urllib.request.urlopen(urllib.request.Request(probe, method="HEAD"), timeout=3):
            return f"Download address {address}: answers"
    except urllib.error.HTTPError as error:
        return f"Download address {address}: answers, but refuses ({error.code} {error.reason})"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return (f"Download address {address}: does not answer within 3 s ({reason}); the lesson "
                f"will use the sample: copy the files by hand or set --mirror "
                f"(docs/troubleshooting.md#the-mnist-download-fails)")


def doctor_report(settings):
    """Lines that say what this machine offers the lesson, each problem with what to do."""
    gpus = gpus_seen()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [
        "mnistlab doctor: paste this block when you ask for help.",
        python_line(),
        requirements_line(),
        pytorch_line(gpus),
        driver_line(),
        *gpu_lines(gpus),
        "CUDA_VISIBLE_DEVICES: " + ("not set" if visible is None else repr(visible)),
        f"CPU threads: {usable_cores()} usable here, of {os.cpu_count()} on the machine",
        *cluster_lines(),
        free_space_line("data", settings.data_dir),
        free_space_line("outputs", settings.out_dir),
        download_line(settings.dataset, settings.mirror),
    ]


def tensorboard_importable():
    try:
        import tensorboard  # noqa: F401  (its own package only: PyTorch's part takes seconds)
    except ImportError:
        return False
    return True
