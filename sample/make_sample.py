"""Draw a committed sample from the official test-set files of MNIST or Fashion-MNIST.

    python sample/make_sample.py --raw-dir ../shared/data/MNIST/raw --dataset MNIST
    python sample/make_sample.py --raw-dir /usr/share/datasets/fashion-mnist --dataset FashionMNIST

Writes sample/<dataset>/raw/ in the IDX layout that torchvision's MNIST and FashionMNIST
read, so the lesson loads a sample and the full dataset the same way.
"""
import argparse
import gzip
from pathlib import Path

import numpy as np

TRAIN_PER_CLASS, TEST_PER_CLASS = 200, 50
SEED = 2020


def read_idx(path):
    with gzip.open(path, "rb") as file:
        data = file.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, required=True,
                        help="folder holding the four official .gz files")
    parser.add_argument("--dataset", choices=["MNIST", "FashionMNIST"], default="MNIST")
    options = parser.parse_args()
    raw = options.raw_dir
    images = read_idx(raw / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(raw / "t10k-labels-idx1-ubyte.gz")

    rng = np.random.default_rng(SEED)
    train_indexes, test_indexes = [], []
    for digit in range(10):
        chosen = rng.choice(np.flatnonzero(labels == digit), TRAIN_PER_CLASS + TEST_PER_CLASS,
                            replace=False)
        train_indexes += list(chosen[:TRAIN_PER_CLASS])
        test_indexes += list(chosen[TRAIN_PER_CLASS:])
    train_indexes, test_indexes = rng.permutation(train_indexes), np.sort(test_indexes)

    out = Path(__file__).resolve().parent / options.dataset / "raw"
    out.mkdir(parents=True, exist_ok=True)
    for split, indexes in (("train", train_indexes), ("t10k", test_indexes)):
        write_idx(out / f"{split}-images-idx3-ubyte", images[indexes])
        write_idx(out / f"{split}-labels-idx1-ubyte", labels[indexes])
        print(f"{split}: {len(indexes)} digits")


if __name__ == "__main__":
    main()
