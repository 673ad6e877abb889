"""The doctor (--doctor): what this machine offers the lesson, said without PyTorch where it can
be: the Python, the PyTorch build and which GPUs and drivers it runs (the builds table), the GPUs
nvidia-smi sees, a Slurm job's share of the machine or a login node, the data, the free space,
and what is missing and how to install it. Standard library only."""

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .console import answer_of, display, printable, readable
from .data import DATASETS, IDX_FILES
from .files import HERE, what_is_at

INDEX = "https://download.pytorch.org/whl/"


@dataclass(frozen=True)
class Build:
    index: str  # its folder on PyTorch's index; "" for pip's default, which requirements.txt gets
    cuda: str  # the CUDA version it is built for
    kernels: tuple  # torch.cuda.get_arch_list() as that build prints it
    pins: str = "torch torchvision"  # what to install from its index
    release: str = ""  # where only an older release has this build

    def describe(self):
        older = f" of PyTorch {self.release}, the newest release that has one" if self.release \
            else ""
        return f"the build for CUDA {self.cuda}{older} ({kernels_text(self.kernels)})"


# Newest first: the first that runs on a machine is the one to install. From PyTorch's release
# matrix (RELEASE.md, "PyTorch CUDA Support Matrix", releases 2.12 to 2.14, and 2.7 for CUDA
# 11.8 and 12.8); the default build's list is checked against the installed one by
# tests/test_builds.py.
BUILDS = (
    Build("", "13.0", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")),
    Build("cu126", "12.6", ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")),
    # Blackwell (RTX 50-series, B200) on a driver for CUDA 12.8 or 12.9, too old for 13.0
    Build("cu128", "12.8", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
          pins="torch==2.7.1 torchvision==0.22.1", release="2.7.1"),
    Build("cu118", "11.8", ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
          pins="torch==2.7.1 torchvision==0.22.1", release="2.7.1"),
)
CPU = Build("cpu", "", ())


def major(version):
    return int(version.split(".")[0])


def capability_of(text):
    """(major, minor) from nvidia-smi's "7.0", or None where it says something else."""
    parts = text.strip().split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(
        part.isdigit() for part in parts) else None


def capability_text(capability):
    return f"{capability[0]}.{capability[1]}"


def architecture(kernel):
    """(kind, (major, minor)) of a kernel name: "sm_86" → ("sm", (8, 6)), "compute_120" →
    ("compute", (12, 0)); None for a name that is not one."""
    kind, _, number = kernel.partition("_")
    return (kind, divmod(int(number), 10)) if number.isdigit() else None


def runs_on(kernels, capability):
    """Whether a build with these kernels runs on a GPU of this (major, minor) capability: code
    for an architecture (sm_70) runs on later GPUs of its major version (7.2), and PTX
    (compute_120) is compiled for any later GPU as the program starts."""
    for kind, built in filter(None, map(architecture, kernels)):
        if kind == "sm" and built[0] == capability[0] and built[1] <= capability[1]:
            return True
        if kind == "compute" and built <= capability:
            return True
    return False


def kernels_text(kernels):
    """"compute capability 7.5 to 12.0", as a learner compares it with nvidia-smi's numbers."""
    built = sorted(built for _, built in filter(None, map(architecture, kernels)))
    if not built:
        return "no GPU"
    return f"compute capability {capability_text(built[0])} to {capability_text(built[-1])}"


def installed_build(cuda):
    """The table's build for the installed PyTorch's CUDA version, or None where the table does
    not know that version (an older release's build)."""
    return next((build for build in BUILDS if build.cuda == cuda), None)


def build_for(driver_cuda, capabilities=()):
    """The newest build that this driver runs and that has kernels for every GPU capability
    given; CPU where there is no driver, or none does."""
    for build in BUILDS:
        if driver_cuda and major(driver_cuda) >= major(build.cuda) and all(
                runs_on(build.kernels, capability) for capability in capabilities):
            return build
    return CPU


def install_command(driver_cuda, capabilities=(), replacing=True):
    """The command that puts the PyTorch this driver and these GPUs can run into a fresh .venv,
    in place of the one there (replacing) or where there is none."""
    fresh = ("rm -rf .venv && " if replacing else "") + "python3 -m venv .venv && "
    fresh += ".venv/bin/pip install "
    build = build_for(driver_cuda, capabilities)
    if not build.index:
        return fresh + "-r requirements.txt"
    return (fresh + f"{build.pins} --index-url {INDEX}{build.index} && .venv/bin/pip install "
            "-r requirements.txt")


def cannot_run(kernels, built_cuda, driver_cuda, capability, others=()):
    """A sentence saying that this build has no kernels for a GPU of this capability, and the
    install of one that has for this driver (and for the `others` GPUs' capabilities too, where
    one build has both); None where it runs."""
    if runs_on(kernels, capability):
        return None
    said = (f"this PyTorch, built for CUDA {built_cuda}, has kernels for "
            f"{kernels_text(kernels)} only, and this GPU's is {capability_text(capability)}")
    wanted = [capability, *others]
    if build_for(driver_cuda, wanted) is CPU:
        wanted = [capability]
    if build_for(driver_cuda, wanted) is not CPU:
        return said + ". " + install_sentence(driver_cuda, wanted)
    return said + ": " + no_build_reason(driver_cuda, capability)


def install_sentence(driver_cuda, capabilities):
    """The sentence that says which build to install, for this driver and these GPUs, and how."""
    return (f"Install {build_for(driver_cuda, capabilities).describe()} into a fresh .venv: "
            f"{install_command(driver_cuda, capabilities)}")


def no_build_reason(driver_cuda, capability):
    """Why no build runs here, when none does, and what to do instead."""
    if not any(runs_on(build.kernels, capability) for build in BUILDS):
        return (f"no PyTorch release the lesson supports has kernels for compute capability "
                f"{capability_text(capability)}; train on the CPU")
    driver = f"a driver for CUDA {driver_cuda}" if driver_cuda else "this driver"
    return f"no build runs on it with {driver}; ask for a newer driver, or train on the CPU"


GUIDE = "docs/cluster.md"
SALLOC = "salloc --cpus-per-task=4 --mem=8G --time=1:00:00"  # and --gpus=1 for a GPU


CGROUP = Path("/sys/fs/cgroup")  # where Linux says what share of the CPUs a container has


def usable_cores(environment=os.environ, cgroup=CGROUP):
    """The cores this process may use: taskset or a job's cgroup may allow fewer than the machine
    has, a container's CPU quota fewer still (docker --cpus=2 leaves every core visible, and
    time to use two of them), and a Slurm job's CPUs may be fewer where Slurm does not pin its
    tasks."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    limits = [given for given in (job_cpus(environment), quota_cpus(cgroup)) if given]
    return min([cores, *limits])


def quota_cpus(cgroup=CGROUP):
    """The CPUs a container's quota gives it, rounded up (cgroup v2's cpu.max, "200000 100000",
    or v1's cfs quota and period), or None where it has none."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if not (quota.isdigit() and period.isdigit()) or int(period) == 0:
        return None  # "max", or v1's -1: no quota
    return max(1, -(-int(quota) // int(period)))


def job_cpus(environment):
    """The CPUs a Slurm job gives each task, or None outside a job."""
    per_task = environment.get("SLURM_CPUS_PER_TASK", "")
    if per_task.isdigit():
        return int(per_task)
    on_node = re.match(r"\d+", environment.get("SLURM_JOB_CPUS_PER_NODE", ""))  # 4, or 4(x2)
    return int(on_node.group()) if on_node and environment.get("SLURM_JOB_ID") else None


def job_gpus(environment):
    """The GPUs a Slurm job was given on this node, as Slurm numbers them ("0,1"), or ""."""
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        if environment.get(name, "").strip():
            return environment[name].strip()
    return ""


def slurm(*command):
    """What a Slurm command prints, or None where Slurm is not here or does not answer in 5 s."""
    return answer_of(command, 5)


def job_lines(environment):
    """What the job this shell runs in was given, and what the lesson makes of it."""
    job, host = environment["SLURM_JOB_ID"], socket.gethostname().split(".")[0]
    node = environment.get("SLURMD_NODENAME")
    if not node and host != environment.get("SLURM_JOB_NODELIST"):
        # salloc's shell runs where salloc was typed, unless the site says otherwise
        return [f"Slurm: this shell holds job {job}, but runs on {host}, not on "
                f"the job's node {environment.get('SLURM_JOB_NODELIST', '?')}: what you start "
                f"here runs on the login node. Run the lesson with srun, or first open a shell "
                f"on the node with: srun --pty bash"]
    state = slurm("squeue", "-h", "-j", job, "-o", "%L %m")
    if not state and slurm("sinfo", "-h", "-o", "%P") is not None:
        # Slurm answers, and no longer knows the job: its variables outlived it in this shell
        return [f"Slurm: SLURM_JOB_ID={job} is left in this shell from a job that has ended "
                f"(squeue no longer knows it), so this shell is in no job, and the job's share "
                f"of CPUs and GPUs is no longer yours. Open a new shell, or clear the job's "
                f"variables with: unset ${{!SLURM_@}}", *outside_job_lines(host, environment)]
    left, memory = state.split()[:2] if state else ("an unknown time", "an unknown amount")
    cpus, gpus, threads = job_cpus(environment), job_gpus(environment), usable_cores(environment)
    given = [f"{cpus} CPU{'s' * (cpus != 1)}" if cpus else "CPUs Slurm did not say",
             f"{memory} of memory", f"GPUs {gpus}" if gpus else "no GPU"]
    lines = [f"Slurm job {job} ({environment.get('SLURM_JOB_NAME', 'unnamed')}) on node "
             f"{node or host}: {', '.join(given)}; {left} left"]
    on_cpu = f"on the CPU with up to {threads} thread{'s' * (threads != 1)}"
    if gpus:
        visible = environment.get("CUDA_VISIBLE_DEVICES", "")
        lines.append(f"In this job the lesson trains on the job's GPU, cuda:0 "
                     f"(CUDA_VISIBLE_DEVICES={visible!r}), where the GPU lines above show that "
                     f"PyTorch can use it, and otherwise {on_cpu}")
    else:
        lines.append(f"In this job the lesson trains {on_cpu}: the job has no GPU (ask for one "
                     f"with --gpus=1, on a partition that has them)")
    return [*lines, *ranks_lines(environment, gpus)]


def ranks_lines(environment, gpus):
    """Where lesson three's ranks would run in this job, given its GPUs on this node ("0,1"): a
    launcher in each task (slurm/ddp.sbatch), each starting a rank for each GPU of its node. None
    in a job of one node and at most one GPU, lesson one's."""
    gpus_here = len([gpu for gpu in gpus.split(",") if gpu])
    nodes = int(environment.get("SLURM_JOB_NUM_NODES") or environment.get("SLURM_NNODES") or 1)
    if nodes == 1 and gpus_here <= 1:
        return []
    tasks = int(environment.get("SLURM_NTASKS") or nodes)
    listed = environment.get("SLURM_JOB_NODELIST", "?")
    names = (slurm("scontrol", "show", "hostnames", listed) or "").split() or (
        [listed] if re.fullmatch(r"[\w.-]+", listed) else [])  # one node needs no expanding
    where = (f"on {listed}" if not names or len(names) > 4 else f"on {names[0]}"
             if len(names) == 1 else f"on {', '.join(names[:-1])} and {names[-1]}")
    first = f"on {names[0]}, the job's first node" if names else f"on the first node of {listed}"
    launchers = "1 launcher" if tasks == 1 else f"{tasks} launchers, one in each task,"
    each = "starting" if tasks == 1 else "each starting"
    ranks = (f"{gpus_here} ranks, one for each GPU of its node: {tasks * gpus_here} in all"
             if gpus_here else "`ranks` CPU processes (2, or MNISTLAB_RANKS)")
    return [f"Lesson three in this job (sbatch slurm/ddp.sbatch): {launchers} {where}, {each} "
            f"{ranks}, meeting at a rendezvous {first}"]


def outside_job_lines(host, environment):
    """The doctor's lines where Slurm answers but this shell is in no job."""
    mine = slurm("squeue", "--me", "-h", "-t", "RUNNING", "-w", host, "-o", "%i")
    if mine:
        job = mine.split()[0]
        return [f"Slurm: your job {job} runs on this node ({host}), but this shell is outside "
                f"it (an SSH session, as VS Code's): it has none of the job's variables, and "
                f"may see more CPUs and GPUs than the job was given. Keep to the job's share "
                f"(squeue -j {job} -o '%C %b' shows it; --threads and --device take it), or "
                f"run inside the job with: srun --jobid {job} --overlap --pty bash"]
    lines = [f"Slurm: {host} is a login node (Slurm answers, and this shell is in no job): edit "
             f"and submit here, and train on a compute node. A shell there: {SALLOC} (add "
             f"--gpus=1 for a GPU), then srun --pty bash; a batch job: sbatch "
             f"slurm/train.sbatch. {GUIDE} says more"]
    if environment.get("TERM_PROGRAM") == "vscode":
        lines.append(f"Slurm: VS Code's server runs on this login node too, with its kernels: "
                     f"connect VS Code to a compute node instead ({GUIDE})")
    return lines


def cluster_lines(environment=os.environ):
    """The doctor's lines on Slurm, which the lesson's device cell prints too outside a job:
    none where there is no cluster."""
    if environment.get("SLURM_JOB_ID"):
        return job_lines(environment)
    if slurm("sinfo", "-h", "-o", "%P") is None:
        return []
    return outside_job_lines(socket.gethostname(), environment)


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


def torch_version_file():
    """The text of the installed PyTorch's version.py, read without importing PyTorch (which
    takes seconds); "" without PyTorch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return ""
    return (Path(spec.submodule_search_locations[0]) / "version.py").read_text()


def torch_build():
    """(version, cuda) of the installed PyTorch: cuda is None for a build without CUDA (for the
    CPU, or ROCm's: torch_hip); both are None without PyTorch."""
    text = torch_version_file()
    if not text:
        return None, None
    version = re.search(r"^__version__\b.*=\s*'([^']+)'", text, re.M)
    cuda = re.search(r"^cuda\b.*=\s*'([\d.]+)'", text, re.M)
    return (version.group(1) if version else "?"), (cuda.group(1) if cuda else None)


def torch_hip():
    """The ROCm (HIP) version a PyTorch for AMD GPUs was built for, or None."""
    hip = re.search(r"^hip\b.*=\s*'([\d.]+)", torch_version_file(), re.M)
    return hip.group(1) if hip else None


def pytorch_line(driver_gpus):
    version, cuda = torch_build()
    if version is None:
        return "PyTorch: not installed in this Python (see Requirements)"
    line = f"PyTorch {version}, "
    if torch_hip():
        return line + (f"built for ROCm {torch_hip()}: it runs AMD GPUs, through PyTorch's "
                       f"cuda device names (cuda, cuda:1)")
    if cuda is None:
        line += "a CPU-only build"
        if driver_gpus and driver_gpus[0].maker == "AMD":
            line += (" - but rocm-smi sees an AMD GPU: install the ROCm build that matches this "
                     "server's ROCm into a fresh .venv (https://pytorch.org/get-started/locally/"
                     ", Linux, ROCm)")
        elif driver_gpus:
            capabilities = [gpu.capability for gpu in driver_gpus if gpu.capability]
            line += (" - but nvidia-smi sees a GPU: install the CUDA build into a fresh .venv: "
                     + install_command(driver_cuda_version(), capabilities))
        return line
    return line + f"built for CUDA {cuda}"


NVIDIA_DEVICE = Path("/dev/nvidia0")  # the first GPU, as the driver makes it


def nvidia_smi(*query):
    """What nvidia-smi prints for `query`, or None where it does not answer within 10 s; once it
    has hung, it is not asked again in this process."""
    if HUNG or not shutil.which("nvidia-smi"):
        return None
    try:
        answer = subprocess.run(["nvidia-smi", *query], capture_output=True, text=True,
                                timeout=10)
    except subprocess.TimeoutExpired:
        HUNG.append("nvidia-smi")
        return None
    except OSError:
        return None
    return answer.stdout.strip() if answer.returncode == 0 else None


HUNG = []  # the nvidia-smi that did not answer in time, once it has not
STUCK = ("nvidia-smi did not answer within 10 s: the driver or a GPU is stuck. Ask the server's "
         "administrator; rebooting usually clears it")


def why_nvidia_smi_is_silent():
    """Why nvidia-smi gives no answer, in words: missing (where a container may hide it), hung,
    a driver updated without a restart, or what it says itself."""
    if HUNG:
        return STUCK
    if not shutil.which("nvidia-smi"):
        if NVIDIA_DEVICE.exists():
            return (f"nvidia-smi is missing, but {NVIDIA_DEVICE} is here: this looks like a "
                    f"container started without NVIDIA's utilities. Start it with the NVIDIA "
                    f"Container Toolkit (docker run --gpus all, or --nv in Apptainer)")
        return "nvidia-smi is not installed: no NVIDIA GPU here, or no driver"
    try:
        answer = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        HUNG.append("nvidia-smi")
        return STUCK
    except OSError as error:
        return f"nvidia-smi cannot be run ({error.strerror or error})"
    said = (answer.stdout + answer.stderr).strip()
    if "version mismatch" in said.lower():
        return ("the NVIDIA driver was updated and the machine has not been restarted since "
                "(nvidia-smi: Driver/library version mismatch): reboot it, or ask the server's "
                "administrator to")
    if answer.returncode:
        return f"nvidia-smi fails: {printable(said.splitlines()[0])[:160] if said else 'silent'}"
    return None


def driver_cuda_version():
    """The newest CUDA version the NVIDIA driver supports, as nvidia-smi's header shows it."""
    header = nvidia_smi() or ""
    found = re.search(r"CUDA Version:\s*(\d+(?:\.\d+)*)", header)
    return found.group(1) if found else None


# index, name, free and total memory (in MiB; "[N/A]" where the GPU shares the CPU's memory,
# as a GB10 or a Jetson does), and the compute capability where the driver can tell it
GPU_ROW = re.compile(r"(\d+), ([^,]+), (\d+|\[N/A\]), (\d+|\[N/A\])(?:, (.+))?")
DRIVER_VERSION = re.compile(r"\d+(\.\d+)+")


class GpuSeen(NamedTuple):
    index: str  # nvidia-smi's (or rocm-smi's) numbering
    name: str
    free_mib: int | None  # None: memory shared with the CPU (unified), which has no own figure
    total_mib: int | None
    capability: tuple | None  # (major, minor); None where the driver is too old to say
    maker: str = "NVIDIA"
    architecture: str = ""  # AMD's, such as gfx90a


def mib(text):
    return int(text) if text.isdigit() else None


def gpus_seen():
    """Each GPU nvidia-smi lists, with its compute capability where the driver can tell it (from
    driver 510 on); a line that is not such a row (a stand-in's or a failing driver's own text)
    lists none."""
    fields = "index,name,memory.free,memory.total"
    answer = nvidia_smi(f"--query-gpu={fields},compute_cap", "--format=csv,noheader,nounits")
    if answer is None:  # an older driver refuses a field it does not know
        answer = nvidia_smi(f"--query-gpu={fields}", "--format=csv,noheader,nounits") or ""
    rows = [GPU_ROW.fullmatch(line.strip()) for line in answer.splitlines()]
    nvidia = [GpuSeen(index, name, mib(free), mib(total), capability_of(capability or ""))
              for index, name, free, total, capability in (row.groups() for row in rows if row)]
    return nvidia or amd_gpus_seen()


def amd_gpus_seen():
    """Each AMD GPU rocm-smi lists, with its memory and architecture (gfx90a, …)."""
    answer = answer_of(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"], 10)
    try:
        cards = json.loads(answer or "{}")
    except ValueError:  # a failing driver's text rather than JSON
        return []
    gpus = []
    for card, fields in sorted(cards.items()):
        if not (card.startswith("card") and isinstance(fields, dict)):
            continue
        field = {key.lower(): str(value) for key, value in fields.items()}
        total, used = field.get("vram total memory (b)", ""), field.get(
            "vram total used memory (b)", "")
        free = int(total) - int(used) if total.isdigit() and used.isdigit() else None
        gpus.append(GpuSeen(card.removeprefix("card"), field.get("card series", "AMD GPU"),
                            free // 2**20 if free is not None else None,
                            int(total) // 2**20 if total.isdigit() else None, None, "AMD",
                            field.get("gfx version", "")))
    return gpus


def driver_line():
    answer = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    if answer is None:
        return f"NVIDIA driver: {why_nvidia_smi_is_silent() or 'nvidia-smi does not answer'}"
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
                  else f", {gpu.architecture}" if gpu.architecture else "")
    memory = (f"{gpu.free_mib / 1024:.1f} of {gpu.total_mib / 1024:.1f} GiB free"
              if gpu.free_mib is not None and gpu.total_mib is not None else
              "memory shared with the CPU (unified memory: the machine's free memory is the "
              "GPU's)")
    tool = "nvidia-smi" if gpu.maker == "NVIDIA" else "rocm-smi"
    return f"GPU {gpu.index} ({tool}'s numbering): {gpu.name}{capability}, {memory}"


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
    if gpus[0].maker == "AMD" and torch_build()[0] and not torch_hip():
        lines.append("GPUs: PyTorch cannot use these AMD GPUs: it is not a ROCm build. Install "
                     "the ROCm build that matches this server's ROCm into a fresh .venv (the "
                     "command is on https://pytorch.org/get-started/locally/, Linux, ROCm)")
    elif built and driver:
        lines += cannot_use_lines(gpus, built, driver)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        lines.append("GPUs: CUDA_VISIBLE_DEVICES is empty, which hides them all from PyTorch")
    elif visible is not None and gpus[0].maker == "NVIDIA" and hides_every_gpu(visible, gpus):
        first = visible.split(",")[0].strip()
        lines.append(f"GPUs: CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from PyTorch: its "
                     f"first entry, {first}, names none of the GPUs above (0 to "
                     f"{len(gpus) - 1}, or their GPU-… UUIDs, as nvidia-smi -L lists them), and "
                     f"CUDA reads no further. Unset it, or name one of them")
    return lines


def hides_every_gpu(visible, gpus):
    """Whether CUDA_VISIBLE_DEVICES leaves PyTorch no GPU: CUDA reads its entries up to the first
    that names no GPU, so a first entry of -1, an index past the last GPU, or a UUID that is not
    here hides them all."""
    first = visible.split(",")[0].strip()
    if first.lstrip("-").isdigit():
        return not 0 <= int(first) < len(gpus)
    if first.startswith(("GPU-", "MIG-")):
        uuids = (nvidia_smi("--query-gpu=uuid", "--format=csv,noheader") or "").split()
        return not any(uuid.startswith(first) or first.startswith(uuid) for uuid in uuids)
    return True


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
