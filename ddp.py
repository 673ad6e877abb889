# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson three: the same training on many processes, with DistributedDataParallel
#
# Lesson one trains on one device. This lesson trains the same network on
# the same data in several processes at once, each a *rank* with a replica
# of the network, as on a server's GPUs or a cluster's nodes. It is a
# program that starts its ranks itself, as `torchrun` does, and tells each
# who it is; a notebook cannot host them, so in VS Code run it in a
# terminal (`ranks` below says how many; `torchrun --standalone
# --nproc-per-node=2 ddp.py` starts it too):
#
#     .venv/bin/python ddp.py --ranks 2 --sample
#
# On a Slurm cluster, `sbatch slurm/ddp.sbatch` runs it on several nodes,
# a rank on each GPU. It takes lesson one's settings, and three of its own
# (`--help` lists them); `docs/many-gpus.md` says what each rank does, and
# what it measured.

# %% tags=["parameters"]
epochs = 1                # passes over the training data
batch_size = 128          # images per training step
lr = 0.02                 # peak learning rate of the one-cycle schedule
seed = 0                  # the same seed gives the same result on the same machine
channels = 16             # feature maps of the first convolution; the second has twice as many
device_name = "auto"      # where to train: "auto", "cpu", "cuda", "cuda:1" (a GPU by index), "mps"
threads = 0               # CPU threads to train with; 0: every core this job may use
ranks = 2                 # processes (ranks) on this machine: one for each GPU, or CPU processes
nodes = 1                 # machines that train together, each starting `ranks` processes
rendezvous = ""           # where the machines meet, "HOST:PORT"; "": this machine alone
dataset = "mnist"         # "mnist" for handwritten digits, "fashion" for Fashion-MNIST's clothes
data_dir = "data"         # the data goes in MNIST/raw/ in this folder, downloaded if missing
mirror = ""               # where to download the data from, if not the official address
sample = False            # True: train and test on the small sample in sample/, in seconds
out_dir = "outputs"       # where the figures and the trained network are saved
resume = False            # True: go on with the run cut short in out_dir, after its last epoch

# %% [markdown]
# Started as a plain program, it starts its ranks, and each runs this again
# with `RANK` and `WORLD_SIZE` set, as torchrun sets them. Only rank 0
# prints and draws progress bars: the others would say the same again.

# %%
import os
import re
import sys

import mnistlab_tools as tools

tools.set_up_terminal()  # Ctrl-C ends in one line
settings = tools.settings_or_stop(globals(), lesson="ddp")  # the cell, MNISTLAB_*, the options
if "RANK" not in os.environ:  # started as a plain program: it starts its ranks, as torchrun does
    tools.as_ranks(__file__, settings)
rank, ranks = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
if rank:
    sys.stdout = open(os.devnull, "w")  # for the whole process: it is never closed
print(settings)
run = tools.Run(settings, rank=rank)  # rank 0 alone writes out_dir

# %% [markdown]
# ## The process group
#
# The ranks talk through a *process group*: NCCL between GPUs, gloo between
# CPUs. A rank that stops answering ends the others after the timeout, one
# minute here rather than NCCL's thirty.

# %%
import atexit
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mnistlab_saved import (accuracy, fresh_network, one_cycle_adam, pixel_mean_and_std, predict,
                            to_tensors, train_one_epoch)

local_rank, local_ranks = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
device = tools.rank_device(settings.device_name, local_rank, local_ranks)  # GPU number local_rank
if device.type == "cuda":
    torch.cuda.set_device(device)
elif settings.threads:
    torch.set_num_threads(settings.threads)
dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=60))
atexit.register(dist.destroy_process_group)  # however the rank ends: left open, it aborts at exit
print(f"{ranks} ranks, talking through {dist.get_backend()}, each on {device.type}" if ranks > 1
      else f"1 rank, alone, on {device.type}")

# %% [markdown]
# ## The data, on every rank
#
# Rank 0 finds (or downloads) the data first; the others wait for it at a
# *barrier*, then read the same files. Every rank holds all of it as
# tensors, as in lesson one.

# %%
if rank == 0:
    data = tools.find_data(settings)
dist.barrier()
if rank:
    data = tools.find_data(settings)
train_set = data.torchvision_class(data.folder, train=True)
test_set = data.torchvision_class(data.folder, train=False)
mean, std = pixel_mean_and_std(train_set)
train_images, train_labels = to_tensors(train_set, mean, std, device)
test_images, test_labels = to_tensors(test_set, mean, std, device)

# %% [markdown]
# ## Each rank's share of an epoch
#
# Every rank draws the epoch's shuffled order from the same seed and the
# epoch's number, so all draw the same order (what `DistributedSampler`'s
# `set_epoch` does). Rank *r* takes every `ranks`-th image of it, starting at
# *r*: together the ranks see each image once. All shares are equally long,
# so that no rank waits at a step the others never take.

# %%
def epoch_order(count, seed, epoch):
    """The shuffled order of an epoch's images, the same on every rank."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed + epoch))


def shares(images, labels, batch_size, seed, epoch, rank, ranks):
    """This rank's batches of the epoch: its share of the order every rank draws alike."""
    order = epoch_order(len(images), seed, epoch)
    mine = order[: len(order) // ranks * ranks][rank::ranks].to(images.device)
    return ((images[batch], labels[batch]) for batch in mine.split(batch_size))


per_rank = max(1, settings.batch_size // ranks)  # the global batch is batch_size, as in lesson one
steps_per_epoch = -(-(len(train_images) // ranks) // per_rank)

# %% [markdown]
# The start of epoch 1's order, as every rank draws it, each image captioned
# with the rank that trains on it. In each step every rank takes the next
# `per_rank` images of its own, together one batch of `batch_size`. Rank 0
# draws it: the others would draw the same.

# %%
if rank == 0:
    first = epoch_order(len(train_images), settings.seed, 1)[:20]
    ranks_of_first = [position % ranks for position in range(len(first))]
    split = tools.image_grid(train_set.data[first], [f"rank {r}" for r in ranks_of_first],
                             f"The start of batch 1: {per_rank} images for each of {ranks} ranks",
                             color=[f"C{r}" for r in ranks_of_first])
    run.show(split, "batch_over_ranks")

# %% [markdown]
# ## One network, a replica on each rank
#
# Each rank builds the network from the same seed, and
# `DistributedDataParallel` checks that the replicas start equal. In
# `backward` it *all-reduces* the gradients: every rank gets their average
# over the ranks, so each optimiser takes the same step, and the replicas
# stay equal. Batch normalisation keeps its statistics per rank, each from
# its own share (`SyncBatchNorm.convert_sync_batchnorm` would pool them,
# worth it where a rank's batch is small). The learning rate is lesson
# one's: the global batch is the same.

# %%
network = fresh_network(settings.channels, settings.seed, device)
model = DistributedDataParallel(network)
optimizer, scheduler = one_cycle_adam(model, settings.lr, settings.epochs * steps_per_epoch)


def all_agree(signal_number):
    """The stop signal any rank has had, on every rank (0: none). A signal
    may reach one rank a batch before the others, or it alone (Ctrl-C in one
    node's terminal); the highest number wins: SIGTERM over the time-limit
    warning over Ctrl-C."""
    number = torch.tensor([signal_number], device=device)
    dist.all_reduce(number, op=dist.ReduceOp.MAX)
    return int(number.item())


def rank_zeros(value):
    """Rank 0's value, on every rank: each decides from the same test accuracy."""
    shared = torch.tensor([float(value)], device=device)
    dist.broadcast(shared, src=0)
    return shared.item()


# %% [markdown]
# ## Training
#
# Lesson one's loop, with each rank's share. The run is lesson one's too:
# Ctrl-C, or a batch system's SIGTERM or time-limit warning (SIGUSR1), ends
# every rank after the same batch (they agree before each), and rank 0
# saves the training state after each epoch, from which `--resume` goes on.
# A rank that dies ends the others: each stops as its exchange breaks.

# %%
try:
    with run.training(network, optimizer, scheduler, train_images, steps_per_epoch, all_agree):
        for epoch in run.epochs():
            batches = shares(train_images, train_labels, per_rank, settings.seed, epoch, rank,
                             ranks)
            losses = train_one_epoch(model, optimizer, scheduler, run.watched(batches, epoch))
            test_accuracy = rank_zeros(accuracy(predict(network, test_images), test_labels))
            run.end_epoch(epoch, losses, test_accuracy)
except RuntimeError as error:  # gloo's and NCCL's own, where another rank died mid-step
    if not (isinstance(error, dist.DistError) or re.search(r"gloo|NCCL", str(error))):
        raise
    tools.lost_a_rank()  # quietly: the launcher of the rank that died names it

# %% [markdown]
# ## The replicas, still equal
#
# Each rank sums its learned weights; all-gathering the sums shows that the
# ranks ended with the same network. (Batch normalisation's running
# statistics are each rank's own; rank 0's are saved with the weights.)

# %%
total = torch.stack([weight.detach().double().sum() for weight in network.parameters()]).sum()
totals = [torch.zeros_like(total) for _ in range(ranks)]
dist.all_gather(totals, total)
print(f"The {ranks} replicas' weights are equal: {all(t == totals[0] for t in totals)}")
run.save_network(data.class_names, mean, std, channels=settings.channels)
print(f"Result: {run.seconds:.2f} s of training on {ranks} rank{'s' * (ranks > 1)}, test accuracy "
      f"{accuracy(predict(network, test_images), test_labels):.2f} % on {len(test_labels):,} "
      f"{data.name} test {data.items}")
run.exit_if_interrupted()
