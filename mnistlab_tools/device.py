"""The device: where to train (auto takes the idle GPU with the most free memory that this
PyTorch can run, else MPS, else the CPU), set up so that a seed repeats; whether the training
fits in the device's memory, and a plain line where it does not; and the lesson's few lines on
this machine."""

import contextlib
import copy
import gc
import os
import re
import subprocess
import sys
import traceback

import torch

from .console import PYTHON, stop
from .doctor import (
    cannot_run,
    capability_text,
    cluster_lines,
    driver_cuda_version,
    nvidia_smi,
    python_line,
    pytorch_line,
    runs_on,
    usable_cores,
)

STARTING_THREADS = torch.get_num_threads()  # before the lesson sets any


def accelerator_type():
    """The kind of accelerator this PyTorch can use (cuda, mps, xpu, …), or None."""
    if hasattr(torch, "accelerator"):  # PyTorch 2.6 and newer: every kind through one interface
        found = torch.accelerator.current_accelerator() if torch.accelerator.is_available() \
            else None
        return found.type if found is not None else None
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else None


def devices_here():
    """Every device PyTorch can train on here, by name: cuda:0, cuda:1, …, mps, cpu."""
    kind = accelerator_type()
    if kind is None:
        return ["cpu"]
    count = torch.accelerator.device_count() if hasattr(torch, "accelerator") else (
        torch.cuda.device_count() if kind == "cuda" else 1)
    names = [kind] if kind == "mps" else [f"{kind}:{index}" for index in range(count)]
    return names + ["cpu"]


def every_gpu_memory():
    """[(free, total) bytes] of each CUDA GPU. Asking a GPU starts a CUDA context on it, which
    holds some of its memory while the process lives: with several GPUs, a short process of its
    own asks them, so that the lesson holds memory only on the GPU it trains on."""
    count = torch.cuda.device_count()
    if count <= 1:
        return [torch.cuda.mem_get_info(index) for index in range(count)]
    asked = subprocess.run(
        [sys.executable, "-c", "import torch\nfor index in range(torch.cuda.device_count()):\n"
         "    print(*torch.cuda.mem_get_info(index))"],
        capture_output=True, text=True, timeout=120, check=True)
    return [tuple(map(int, line.split())) for line in asked.stdout.splitlines()]


BUSY_PERCENT = 10  # a GPU computing this share of the time is someone's running job


def busy_gpus():
    """The CUDA indices of the GPUs someone is computing on, as nvidia-smi's utilization shows
    them: nvidia-smi's numbers, or their places in CUDA_VISIBLE_DEVICES when it lists some."""
    answer = nvidia_smi("--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits")
    rows = re.findall(r"^\s*(\d+),\s*(\d+)\s*$", answer or "", re.M)
    busy = {int(index) for index, used in rows if int(used) >= BUSY_PERCENT}
    return in_cuda_numbering(busy, os.environ.get("CUDA_VISIBLE_DEVICES"))


def in_cuda_numbering(gpus, visible):
    """nvidia-smi's GPU numbers as CUDA numbers them when CUDA_VISIBLE_DEVICES is `visible`."""
    if visible is None:
        return gpus
    listed = [part.strip() for part in visible.split(",") if part.strip()]
    if not all(part.isdigit() for part in listed):
        return set()  # GPUs named by UUID: which is which cannot be told here
    return {place for place, index in enumerate(listed) if int(index) in gpus}


def gpus_pytorch_cannot_run():
    """{CUDA index: (major, minor)} of the GPUs this PyTorch has no kernels for, such as a V100
    (7.0) under a build for CUDA 13: its first computation there would fail. A ROCm build names
    AMD's architectures (gfx90a) instead, and is asked by those."""
    kernels = torch.cuda.get_arch_list()
    if torch.version.hip:
        architectures = {gpu: torch.cuda.get_device_properties(gpu).gcnArchName.split(":")[0]
                         for gpu in range(torch.cuda.device_count())}
        return {gpu: architecture for gpu, architecture in architectures.items()
                if kernels and architecture not in kernels}
    capabilities = {gpu: torch.cuda.get_device_capability(gpu)
                    for gpu in range(torch.cuda.device_count())}
    return {gpu: capability for gpu, capability in capabilities.items()
            if kernels and not runs_on(kernels, capability)}


def why_it_cannot_run(capability):
    """The sentence that says this PyTorch has no kernels for a GPU, with the install that
    has."""
    if torch.version.hip:  # an AMD architecture, such as gfx1036
        return (f"this ROCm build of PyTorch has no kernels for {capability} (it has "
                f"{', '.join(torch.cuda.get_arch_list())}): install the ROCm build for it "
                f"(https://pytorch.org/get-started/locally/)")
    return cannot_run(torch.cuda.get_arch_list(), torch.version.cuda, driver_cuda_version(),
                      capability)


def least_busy_gpu(memory, busy, unusable=()):
    """The index of the GPU to train on, of those this PyTorch can run on (None where it can run
    on none): of those nobody is computing on, the one with the most free memory; when all are
    busy, the one with the most free memory."""
    usable = [gpu for gpu in range(len(memory)) if gpu not in unusable]
    idle = [gpu for gpu in usable if gpu not in busy]
    return max(idle or usable, key=lambda gpu: memory[gpu][0], default=None)


def most_free_gpu(unusable):
    """(name, why) of the idle CUDA GPU with the most free memory of those this PyTorch can run
    on, all but `unusable` ({index: capability}); the CPU where it can run on none."""
    memory = every_gpu_memory()
    busy = busy_gpus() & set(range(len(memory)))
    index = least_busy_gpu(memory, busy, unusable)
    if index is None:
        lowest = min(unusable.values())
        return "cpu", f"PyTorch cannot use the GPUs here: {why_it_cannot_run(lowest)}"
    free, total = memory[index]
    why = f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
    usable = len(memory) - len(unusable)
    idle = len(set(range(len(memory))) - busy - set(unusable))
    if usable > 1 and idle == usable:
        why += f", the most of the {usable} GPUs here"
    elif usable > 1:
        why += f", the most of the {idle} idle GPUs here" if idle else ", though all are busy"
    for gpu, capability in unusable.items():
        why += (f"; passed over cuda:{gpu}, whose compute capability {capability_text(capability)}"
                f" this PyTorch has no kernels for ({PYTHON} mnistlab.py --doctor says which has)")
    return f"cuda:{index}", why


def chosen_device(name):
    """(name, why): the device `name` stands for here, or a stop that names those there are."""
    here = devices_here()
    unusable = gpus_pytorch_cannot_run() if here[0].startswith("cuda:") else {}
    if name == "auto":
        if here[0].startswith("cuda:"):
            return most_free_gpu(unusable)
        return here[0], ("the only accelerator here" if here[0] != "cpu"
                         else f"PyTorch sees no GPU here ({PYTHON} mnistlab.py --doctor says why)")
    if name not in here and f"{name}:0" in here:
        name += ":0"  # cuda means the first GPU
    if name not in here:
        stop(f"--device {name} was asked for, but there is no such device here; there is "
             f"{', '.join(here)}. Use one of those, or --device auto.")
    gpu = int(name.partition(":")[2]) if name.startswith("cuda:") else None
    if gpu in unusable:
        stop(f"--device {name} is a {torch.cuda.get_device_name(gpu)}, and "
             f"{why_it_cannot_run(unusable[gpu])}")
    return name, "as asked"


def pick_device(name, threads=0):
    """(device, why): the torch.device to train on, set up so that the same seed gives the same
    result on it, and a few words on why it was chosen. On the CPU, PyTorch runs `threads`
    threads, or with 0 one for each core this process may use."""
    # CUDA numbers GPUs fastest first unless told otherwise; nvidia-smi, which the learner reads,
    # numbers them by bus. This must be set before CUDA starts, which asking for devices does.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    name, why = chosen_device(name)
    device = torch.device(name)
    if device.type == "cpu":
        cores = usable_cores()
        if threads > cores:
            why += (f"; threads = {threads} asked, but this process may use {cores} "
                    f"core{'s' * (cores != 1)}, and more threads than cores wait on each other "
                    f"(64 on 2 cores trained 19 times slower), so it uses {cores}")
            threads = cores
        # 0: PyTorch's count as it started (OMP_NUM_THREADS, or the machine's cores), within
        # this job's, so that a run after one with threads set goes back to it.
        torch.set_num_threads(threads or min(STARTING_THREADS, cores))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        repeatable_on_cuda()
    return device, why


def repeatable_on_cuda():
    """CUDA set up so that the same seed gives the same result: cuDNN would otherwise time several
    algorithms and keep the fastest, which varies by run, and some kernels add in any order."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def describe_device(device, why):
    """Where the lesson trains and why, then the lines of short_report."""
    if device.type == "cuda":
        where = f"Training on {device} ({torch.cuda.get_device_name(device)}): {why}"
    elif device.type == "cpu":
        where = f"Training on cpu with {torch.get_num_threads()} threads: {why}"
    else:
        where = f"Training on {device}: {why}"
    return "\n".join([where, *short_report()])


def training_bytes(model, images, batch_size):
    """About how many bytes training `model` on batches of batch_size takes: its weights four
    times (weights, gradients, Adam's two moments), and what a forward pass keeps for the
    backward pass, twice (the maps, then their gradients), measured on a copy of the model with
    these few images, on the CPU, and scaled to the batch."""
    probe = copy.deepcopy(model).cpu().train()
    weights = {parameter.data_ptr() for parameter in probe.parameters()}
    kept = {}

    def keep(tensor):
        if tensor.data_ptr() not in weights:
            kept[tensor.data_ptr(), tuple(tensor.shape)] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        probe(images.cpu().float()).sum().backward()
    weight_bytes = sum(p.numel() * p.element_size() for p in probe.parameters())
    return 4 * weight_bytes + 2 * sum(kept.values()) * batch_size // len(images)


def available_memory():
    """Bytes of memory that a new allocation may take on this machine, or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_memory(model, images, batch_size):
    """Stop with one line if training `model` on batches of batch_size of images like these would
    need more memory than their device has free: better now than an allocator's error halfway
    through."""
    device = images.device
    needed = training_bytes(model, images, batch_size)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_memory()
    if free is not None and needed > free:
        stop(f"this network trained on batches of {batch_size:,} needs about "
             f"{needed / 2**30:.1f} GiB, and {device} has {free / 2**30:.1f} GiB free: use a "
             f"smaller --channels or --batch-size")


# What PyTorch's errors say where memory runs out: CUDA's and MPS's, then the CPU's allocator's.
OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


@contextlib.contextmanager
def out_of_memory_stops(device, batch_size):
    """Training and testing inside this end, if the device runs out of memory, with one line
    that says how much was free and what to try; the memory the failed step held is given back,
    so that in a kernel the next run goes on without a restart."""
    message = None
    try:
        yield
    except RuntimeError as error:  # torch.OutOfMemoryError is one, and MPS's error too
        if not any(words in str(error).lower() for words in OUT_OF_MEMORY):
            raise
        traceback.clear_frames(error.__traceback__)  # their tensors go with them
        message = f"{device} ran out of memory with batches of {batch_size:,}"
        if device.type == "cuda":
            free, total = torch.cuda.mem_get_info(device.index or 0)
            message += (f" ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free now). Try a "
                        f"smaller --batch-size, another GPU (--device cuda:N), or nvidia-smi to "
                        f"see who holds its memory.")
        else:
            message += ". Try a smaller --batch-size or --channels."
    if message:  # outside the except block, so that no traceback keeps the tensors alive
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        elif device.type == "mps":
            torch.mps.empty_cache()
        stop(message)


def short_report():
    """Three lines for the lesson's device cell: the Python, the PyTorch, and the GPUs it sees
    (without asking each for its memory); on a Slurm cluster outside a job, a fourth that says
    this is a login node, or a node beside your job. The doctor says more."""
    if accelerator_type() == "cuda":
        names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        gpus = f"GPUs visible to PyTorch: {len(names)} ({', '.join(sorted(set(names)))})"
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            gpus += f", as CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} allows"
    elif accelerator_type() is not None:
        gpus = f"GPU: {accelerator_type()}, through PyTorch's {accelerator_type()} backend"
    else:
        gpus = "GPUs: none that PyTorch can use; the lesson trains on the CPU"
    outside_a_job = [] if os.environ.get("SLURM_JOB_ID") else cluster_lines()
    return [python_line(), pytorch_line(""), gpus, *outside_a_job]


def gpus_for_ranks(device_name):
    """How many GPUs the ranks on this machine may take, one each: none with --device cpu, or
    where PyTorch has no CUDA."""
    if device_name == "cpu" or not torch.cuda.is_available():
        return 0
    return torch.cuda.device_count()


def ranks_beyond_the_gpus(device_name, ranks):
    """Why `ranks` processes on this machine cannot each train on a GPU of their own, or None:
    on CUDA each rank takes the GPU of its number on the machine; --device cpu keeps them all on
    the CPU."""
    gpus = gpus_for_ranks(device_name)
    if not gpus or ranks <= gpus:
        return None
    return (f"{ranks} ranks on this machine are more than its {gpus} GPU{'s' * (gpus > 1)}, and "
            f"each rank trains on a GPU of its own. Start {gpus} (--ranks {gpus}, or torchrun "
            f"--nproc-per-node={gpus}), or train in CPU processes with --device cpu.")


def rank_device(device_name, local_rank, local_ranks):
    """The device of rank `local_rank` of the `local_ranks` on this machine: the GPU of that
    number where PyTorch has CUDA, else the CPU. Where the GPUs are too few, the first rank
    says so in one line, and every rank stops."""
    too_many = ranks_beyond_the_gpus(device_name, local_ranks)
    if too_many:
        if local_rank == 0:
            stop(too_many)
        sys.exit(2)
    return torch.device("cuda", local_rank) if gpus_for_ranks(device_name) else torch.device("cpu")
