"""How well lesson two's network (handwriting.py) reads digits written unlike MNIST's: MNIST's
own test digits, changed the ways real handwriting differs from them, one accuracy per change:

    python benchmarks/handwriting.py --data-dir ../shared/data --seeds 5
    python benchmarks/handwriting.py --data-dir ../shared/data --options="--no-augment --epochs 1"
    python benchmarks/handwriting.py --sample --seeds 1          # a quick look
    python benchmarks/handwriting.py --data-dir ../shared/data --figure figures/other_pens.png

Each seed trains lesson two's recipe (its #@save cells, with the values of its parameters cell)
on the training digits, then reads the test digits as they are; with strokes one and two pixels
thicker (3 × 3 and 5 × 5 max-pooling) and thinner (2 × 2 min-pooling); slanted by ±15°; scaled to
70 % and 120 % of the frame; and as photos: each digit made a photo-like JPEG (benchmarks/
photo_like.py), as MNIST wrote it and with a thin and a broad pen, and read back through
prepare_digit, as predict.py reads a photo. Where Debian's handwriting fonts are installed (see
photo_like.py), it also reads photos of the ten digits in each of them, as the font draws them and
with bolder pens. It prints a Markdown table of the mean accuracy over the seeds, and the mean of
the changes. --options trains with other settings, as lesson two's options write them.

--figure draws lesson two's figure of other pens instead: an 8 and a 4 of the test set, thinner,
as they are and thicker, each read by the network of seed 0 trained without other pens
(--no-augment) and with them.
"""

import statistics
import sys
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms.functional import affine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import mnistlab_saved as lesson  # noqa: E402
import mnistlab_tools as tools  # noqa: E402
from recipes import lesson_settings, lesson_two_parser, record, trained_network  # noqa: E402
from photo_like import (  # noqa: E402
    installed_fonts, photo_of_font, photos_read_back, read_as_photo, thicker, thinner)

FONT_PENS = (0, 5, 10)  # pixels of outline around fonts drawn 200 pixels high


def transformed(digits, **how):
    return affine(digits[:, None], angle=0.0, translate=[0, 0], scale=how.get("scale", 1.0),
                  shear=[how.get("shear", 0.0), 0.0])[:, 0]


def as_photos(digits):
    """The digits as photo-like JPEGs, prepared as predict.py prepares a photo."""
    return photos_read_back(lesson.prepare_digit, digits)


def font_photos(fonts, pen):
    """(prepared photos, labels): the ten digits in each font, with `pen` pixels of outline."""
    written = [(font, digit) for font in fonts for digit in range(10)]
    digits = [read_as_photo(lesson.prepare_digit, photo_of_font(font, digit, seed, pen))
              for seed, (font, digit) in enumerate(written)]
    return torch.stack(digits), torch.arange(10).repeat(len(fonts))


def variants(digits, labels, photos):
    """{name: (digits 0 to 1, their labels)}."""
    table = {
        "as they are": digits,
        "strokes 1 pixel thicker (3 × 3 max)": thicker(digits, 1),
        "strokes 2 pixels thicker (5 × 5 max)": thicker(digits, 2),
        "strokes thinner (2 × 2 min)": thinner(digits),
        "slanted +15°": transformed(digits, shear=15.0),
        "slanted −15°": transformed(digits, shear=-15.0),
        "scaled to 70 %": transformed(digits, scale=0.7),
        "scaled to 120 %": transformed(digits, scale=1.2),
        f"photos ({photos:,}), through prepare_digit": as_photos(digits[:photos]),
        "photos, thin pen (2 × 2 min)": as_photos(thinner(digits[:photos])),
        "photos, broad pen (5 × 5 max)": as_photos(thicker(digits[:photos], 2)),
    }
    table = {name: (images, labels[:len(images)]) for name, images in table.items()}
    fonts = installed_fonts()
    for pen in FONT_PENS if fonts else ():
        weight = f", {pen} pixels bolder" if pen else ", as drawn"
        table[f"{len(fonts)} handwriting fonts{weight}"] = font_photos(fonts, pen)
    return table


def pen_readings(train_set, test_set, mean, std):
    """(pens, readings): the test digits with four pens, and each read by the network of seed 0
    trained on MNIST's pen only (--no-augment) and with other pens: {how: {pen: probabilities}}."""
    networks = {how: trained_network(train_set, mean, std, 0,
                                     lesson_settings("handwriting", option))
                for how, option in [("MNIST's pen", "--no-augment"),
                                    ("other pens", "--augment")]}
    digits = test_set.data.float() / 255
    pens = {"thinner": thinner(digits), "as MNIST has it": digits,
            "1 pixel thicker": thicker(digits, 1), "2 pixels thicker": thicker(digits, 2)}
    return pens, {how: {pen: lesson.read_digits(model, images, mean, std)
                        for pen, images in pens.items()} for how, model in networks.items()}


def shows_the_cure(index, label, labels, before, after):
    """Whether this test digit is a `label` misread with a broad pen before, read right after."""
    return (labels[index] == label and before["2 pixels thicker"][index].argmax() != label
            and all(read[index].argmax() == label for read in after.values()))


def pens_figure(train_set, test_set, mean, std, path):
    """The lesson's figure: an 8 and a 4 with four pens, read without and with other pens."""
    import matplotlib.pyplot as plt

    pens, readings = pen_readings(train_set, test_set, mean, std)
    labels = test_set.targets
    chosen = [next(i for i in range(len(labels))
                   if shows_the_cure(i, label, labels, *readings.values())) for label in (8, 4)]
    figure, axes = plt.subplots(len(chosen), len(pens), figsize=(2.8 * len(pens), 6.6))
    for row, index in zip(axes, chosen, strict=True):
        for ax, (pen, images) in zip(row, pens.items(), strict=True):
            ax.imshow(images[index], cmap="gray_r")
            ax.set(xticks=[], yticks=[], title=pen)
            for line, (how, read) in enumerate(readings.items()):
                right = read[pen][index].argmax() == labels[index]
                ax.text(0.5, -0.08 - 0.13 * line, f"{how}: {tools.reading(read[pen][index])}",
                        transform=ax.transAxes, ha="center", va="top", fontsize=9,
                        color="black" if right else "firebrick")
    figure.suptitle("The same digit with other pens, read by a network trained on MNIST's pen "
                    "only, and by one trained\nwith other pens too (red: read wrong)")
    figure.subplots_adjust(hspace=0.55, top=0.88, bottom=0.1)
    tools.show(figure, path)


def option_parser():
    parser = lesson_two_parser(__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000,
                        help="test digits also read as photos (default: 2,000)")
    parser.add_argument("--figure", type=Path, help="draw the lesson's figure of other pens here")
    return parser


def scores(table, train_set, mean, std, seeds, settings):
    """{variant: [accuracy of each seed's network]}."""
    scored = {name: [] for name in table}
    for seed in range(seeds):
        model = trained_network(train_set, mean, std, seed, settings)
        for name, (digits, labels) in table.items():
            predicted = lesson.predict(model, ((digits - mean) / std)[:, None])
            scored[name].append(lesson.accuracy(predicted, labels))
        print(f"seed {seed} done", file=sys.stderr)
    return scored


def report_lines(scored, options):
    """The report's lines: what was measured, then a Markdown row per variant."""
    data = "the sample" if options.sample else "full MNIST"
    how = f"the options {options.options}" if options.options else "its default settings"
    changed = [statistics.mean(values) for name, values in scored.items()
               if name != "as they are"]
    return [f"Test digits of {data}, read by the lesson's network with {how}, "
            f"{options.seeds} seed{'s' * (options.seeds > 1)}; torch {torch.__version__}.", "",
            "| test digits | read right, % (mean over seeds) |", "| --- | --- |",
            *(f"| {name} | {statistics.mean(values):.2f} |" for name, values in scored.items()),
            f"| mean of the changes | {statistics.mean(changed):.2f} |"]


def main():
    options = option_parser().parse_args()
    root = tools.SAMPLE_DIR if options.sample else options.data_dir
    train_set, test_set = datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)
    mean, std = lesson.pixel_mean_and_std(train_set)
    if options.figure:
        return pens_figure(train_set, test_set, mean, std, options.figure)
    settings = lesson_settings("handwriting", options.options)
    variants_read = variants(test_set.data.float() / 255, test_set.targets,
                             min(options.photos, len(test_set)))
    scored = scores(variants_read, train_set, mean, std, options.seeds, settings)
    report = report_lines(scored, options)
    print("\n".join(report))
    if options.record:
        record(options.record, report)


if __name__ == "__main__":
    main()
