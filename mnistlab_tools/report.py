"""The lesson's few lines on the machine it trains on: the Python, the PyTorch and the GPUs it
sees, and whether this is a cluster's login node. The doctor (--doctor) says more."""

import os

import torch

from .cluster import cluster_lines
from .device import accelerator_type
from .doctor import python_line, pytorch_line


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
