"""Whether training fits in the device's memory: an estimate measured on the network itself,
checked before training, and one line, with the memory given back, when the device runs out."""

import contextlib
import copy
import gc
import traceback

import torch

from .console import stop


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


@contextlib.contextmanager
def out_of_memory_stops(device, batch_size):
    """Training and testing inside this end, if the device runs out of memory, with one line
    that says how much was free and what to try; the memory the failed step held is given back,
    so that in a kernel the next run goes on without a restart."""
    message = None
    try:
        yield
    except RuntimeError as error:  # torch.OutOfMemoryError is one, and MPS's error too
        if "out of memory" not in str(error).lower():
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
