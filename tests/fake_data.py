"""Data made for the tests: MNIST-shaped files, some of them damaged, a mirror to download them
from, and held-out digits of the committed sample."""

import gzip
import http.server

import torch
from lesson_runs import REPO
from torchvision import datasets


def write_mnist_like(raw_dir, short=(), packed=False):
    """MNIST-shaped files of zeros; those named in `short` cut off part-way, as by an interrupted
    download. packed: as the .gz files that a mirror serves."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, (magic, count, header) in {
        "train-images-idx3-ubyte": (2051, 60_000, 16),
        "train-labels-idx1-ubyte": (2049, 60_000, 8),
        "t10k-images-idx3-ubyte": (2051, 10_000, 16),
        "t10k-labels-idx1-ubyte": (2049, 10_000, 8),
    }.items():
        body = count * (784 if magic == 2051 else 1)
        content = (
            magic.to_bytes(4, "big")
            + count.to_bytes(4, "big")
            + bytes([0, 0, 0, 28] * ((header - 8) // 4))
            + bytes(body // 3 if name in short else body)
        )
        if packed:
            (raw_dir / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
        else:
            (raw_dir / name).write_bytes(content)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_):
        pass


def held_out_digits(count_per_class=10):
    test = datasets.MNIST(REPO / "sample", train=False)
    chosen = torch.cat(
        [torch.nonzero(test.targets == digit).flatten()[:count_per_class] for digit in range(10)]
    )
    return test.data[chosen], test.targets[chosen]
