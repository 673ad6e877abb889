"""The lesson on a Slurm cluster: the share of the machine a job was given, and, for the doctor,
where this shell is: in a job, on a node where a job of yours runs, or on a login node, where
nothing should train (docs/cluster.md). Standard library only, as the doctor is."""

import os
import re
import socket

from .console import answer_of

GUIDE = "docs/cluster.md"
SALLOC = "salloc --cpus-per-task=4 --mem=8G --time=1:00:00"  # and --gpus=1 for a GPU


def usable_cores(environment=os.environ):
    """The cores this process may use: taskset or a job's cgroup may allow fewer than the machine
    has, and a Slurm job's CPUs may be fewer still where Slurm does not pin its tasks."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    given = job_cpus(environment)
    return min(cores, given) if given else cores


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
    cpus, gpus, threads = job_cpus(environment), job_gpus(environment), usable_cores(environment)
    left, memory = (slurm("squeue", "-h", "-j", job, "-o", "%L %m") or "? ?").split()[:2]
    given = [f"{cpus} CPU{'s' * (cpus != 1)}" if cpus else "? CPUs", f"{memory} of memory",
             f"GPUs {gpus}" if gpus else "no GPU"]
    lines = [f"Slurm job {job} ({environment.get('SLURM_JOB_NAME', '?')}) on node {node or host}: "
             f"{', '.join(given)}; {left} left"]
    on_cpu = f"on the CPU with up to {threads} thread{'s' * (threads != 1)}"
    if gpus:
        visible = environment.get("CUDA_VISIBLE_DEVICES", "")
        lines.append(f"In this job the lesson trains on the job's GPU, cuda:0 "
                     f"(CUDA_VISIBLE_DEVICES={visible!r}), where the GPU lines above show that "
                     f"PyTorch can use it, and otherwise {on_cpu}")
    else:
        lines.append(f"In this job the lesson trains {on_cpu}: the job has no GPU (ask for one "
                     f"with --gpus=1, on a partition that has them)")
    return lines


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
