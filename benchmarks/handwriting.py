"""How well the lesson's network reads digits written unlike MNIST's: MNIST's own test digits,
changed the ways real handwriting differs from them, one accuracy per change:

    python benchmarks/handwriting.py --data-dir ../shared/data --seeds 5
    python benchmarks/handwriting.py --sample --seeds 1          # a quick look

Each seed trains the lesson's recipe (its #@save cells, with the values of its parameters cell)
on the training digits, then reads the test digits as they are; with strokes one and two pixels
thicker (3 × 3 and 5 × 5 max-pooling) and thinner (2 × 2 min-pooling); slanted by ±15°; scaled to
70 % and 120 % of the frame; and as photos: each digit made a photo-like JPEG (benchmarks/
photo_like.py) and read back through prepare_digit, as predict.py reads a photo. It prints a
Markdown table of the mean accuracy over the seeds, and the mean of the changes.
"""

import argparse
import io
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import datasets
from torchvision.transforms.functional import affine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import mnistlab_saved as lesson  # noqa: E402
import mnistlab_tools as tools  # noqa: E402
from photo_like import photo_of  # noqa: E402  (beside this script)


def thicker(digits, pixels):
    size = 2 * pixels + 1
    return F.max_pool2d(digits[:, None], size, stride=1, padding=pixels)[:, 0]


def thinner(digits):
    padded = F.pad(digits[:, None], (0, 1, 0, 1))
    return -F.max_pool2d(-padded, 2, stride=1)[:, 0]


def transformed(digits, **how):
    return affine(digits[:, None], angle=0.0, translate=[0, 0], scale=how.get("scale", 1.0),
                  shear=[how.get("shear", 0.0), 0.0])[:, 0]


def as_photos(digits, count):
    """The first `count` digits as photo-like JPEGs, prepared as predict.py prepares a photo."""
    prepared = []
    for index, digit in enumerate(digits[:count]):
        buffer = io.BytesIO()
        photo_of((digit * 255).round().to(torch.uint8), seed=index).save(buffer, "JPEG",
                                                                        quality=80)
        prepared.append(lesson.prepare_digit(Image.open(buffer)))
    return torch.stack(prepared)


def variants(digits, photos):
    """{name: (digits 0 to 1, how many of the test labels they stand for)}."""
    return {
        "as they are": (digits, len(digits)),
        "strokes 1 pixel thicker (3 × 3 max)": (thicker(digits, 1), len(digits)),
        "strokes 2 pixels thicker (5 × 5 max)": (thicker(digits, 2), len(digits)),
        "strokes thinner (2 × 2 min)": (thinner(digits), len(digits)),
        "slanted +15°": (transformed(digits, shear=15.0), len(digits)),
        "slanted −15°": (transformed(digits, shear=-15.0), len(digits)),
        "scaled to 70 %": (transformed(digits, scale=0.7), len(digits)),
        "scaled to 120 %": (transformed(digits, scale=1.2), len(digits)),
        f"photos ({photos:,}), through prepare_digit": (as_photos(digits, photos), photos),
    }


def trained_network(train_set, mean, std, seed, settings):
    """The lesson's recipe, from its #@save cells, on the CPU."""
    images, labels = lesson.to_tensors(train_set, mean, std, torch.device("cpu"))
    model = lesson.fresh_network(settings.channels, seed, torch.device("cpu"))
    steps = -(-len(images) // settings.batch_size)
    optimizer, scheduler = lesson.one_cycle_adam(model, settings.lr, settings.epochs * steps)
    for _ in range(settings.epochs):
        lesson.train_one_epoch(model, optimizer, scheduler,
                               lesson.shuffled_batches(images, labels, settings.batch_size),
                               settings.augment)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data",
                        help="folder holding MNIST/raw/")
    parser.add_argument("--sample", action="store_true", help="use the committed sample")
    parser.add_argument("--seeds", type=int, default=5, help="networks trained (default: 5)")
    parser.add_argument("--photos", type=int, default=2000,
                        help="test digits also read as photos (default: 2,000)")
    options = parser.parse_args()
    root = tools.SAMPLE_DIR if options.sample else options.data_dir
    train_set, test_set = datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)
    mean, std = lesson.pixel_mean_and_std(train_set)
    settings = tools.read_settings({s.name: s.default for s in tools.SETTINGS}, [], {})
    table = variants(test_set.data.float() / 255, min(options.photos, len(test_set)))
    scores = {name: [] for name in table}
    for seed in range(options.seeds):
        model = trained_network(train_set, mean, std, seed, settings)
        for name, (digits, count) in table.items():
            predicted = lesson.predict(model, ((digits - mean) / std)[:, None])
            scores[name].append(lesson.accuracy(predicted, test_set.targets[:count]))
        print(f"seed {seed} done", file=sys.stderr)
    data = "the sample" if options.sample else "full MNIST"
    print(f"Test digits of {data}, read by the lesson's network with its default settings, "
          f"{options.seeds} seed{'s' * (options.seeds > 1)}; torch {torch.__version__}.\n")
    print("| test digits | read right, % (mean over seeds) |\n| --- | --- |")
    for name, values in scores.items():
        print(f"| {name} | {statistics.mean(values):.2f} |")
    changed = [statistics.mean(values) for name, values in scores.items()
               if name != "as they are"]
    print(f"| mean of the changes | {statistics.mean(changed):.2f} |")


if __name__ == "__main__":
    main()
