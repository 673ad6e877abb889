"""How well lesson two's network reads digits by writers MNIST never had, digit by digit:

    python benchmarks/other_writers.py --data-dir ../shared/data --seeds 5
    python benchmarks/other_writers.py --data-dir ../shared/data --options="--no-augment"
    python benchmarks/other_writers.py --sample --seeds 1 --bends 1        # a quick look

The writers are Debian's handwriting fonts (benchmarks/photo_like.py names them and the packages
that install them). Each digit of each font is drawn as it is and then `--bends` times more, each
time bent by an elastic distortion of its own (Simard, Steinkraus and Platt, 2003: a smooth random
field that moves every pixel a little, the classic stand-in for another writer's hand) and with a
pen from as drawn to 9 pixels bolder; every one becomes a photo-like JPEG, read back through
prepare_digit as predict.py reads a photo. The fonts are in two groups: those that
benchmarks/handwriting.py has always read, and fonts kept unseen while lesson two's other pens
were chosen. MNIST's own test digits, bent the same way, make a third column.

Each seed trains lesson two's recipe with its parameters cell's values (--options changes them,
as the lesson's options write them). The table gives, for each digit, the share read right in
each column, as the mean over the seeds and the lowest seed's.
"""

import statistics
import sys
from pathlib import Path

import torch
from torchvision import datasets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import mnistlab_saved as lesson  # noqa: E402
import mnistlab_tools as tools  # noqa: E402
from photo_like import (  # noqa: E402  (beside this script)
    HANDWRITING_FONTS, UNSEEN_FONTS, bent, installed_fonts, photo_of_font, read_as_photo)
from recipes import lesson_settings, lesson_two_parser, record, trained_network  # noqa: E402

PENS = (0, 3, 6, 9)  # pixels of outline around a font drawn 200 pixels high


def font_writers(fonts, bends):
    """(prepared photos, labels): each digit of each font as drawn, then bent `bends` times."""
    photos, labels, seed = [], [], 0
    for font in fonts:
        for digit in range(10):
            for bend in range(bends + 1):
                seed += 1
                pen = PENS[seed % len(PENS)] if bend else 0
                photo = photo_of_font(font, digit, seed, pen=pen, bend=bend > 0)
                photos.append(read_as_photo(lesson.prepare_digit, photo))
                labels.append(digit)
    return torch.stack(photos), torch.tensor(labels)


def bent_digits(test_set):
    """MNIST's test digits (0 to 1), each bent as another writer would have written it."""
    generator = torch.Generator().manual_seed(0)
    return torch.stack([bent(digit.float() / 255, generator) for digit in test_set.data])


def columns(test_set, bends):
    """{column: (digits 0 to 1, labels)}, leaving out a group of fonts this machine lacks."""
    table = {}
    for name, fonts in [("fonts read before", installed_fonts(HANDWRITING_FONTS)),
                        ("unseen fonts", installed_fonts(UNSEEN_FONTS))]:
        if fonts:
            table[f"{len(fonts)} {name}"] = font_writers(fonts, bends)
    table["MNIST's test digits, bent"] = bent_digits(test_set), test_set.targets
    return table


def per_digit(model, digits, labels, mean, std):
    """The share of each digit read right, in %."""
    predicted = lesson.predict(model, ((digits - mean) / std)[:, None])
    return [100 * (predicted[labels == digit] == digit).float().mean().item()
            for digit in range(10)]


def cell(seeds, labels, digit):
    """"mean (lowest)" over the seeds of one digit's share read right, or of all digits' (None),
    weighted by how many of each digit there are."""
    if digit is None:
        counts = [(labels == d).sum().item() for d in range(10)]
        shares = [sum(share * count for share, count in zip(seed, counts, strict=True))
                  / len(labels) for seed in seeds]
    else:
        shares = [seed[digit] for seed in seeds]
    return f"{statistics.mean(shares):.1f} ({min(shares):.1f})"


def report_lines(scored, table, options):
    """What was measured, then Markdown: a row per digit, and one for all; each cell the mean
    over seeds (lowest)."""
    data = "the sample" if options.sample else "full MNIST"
    how = f"the options {options.options}" if options.options else "its default settings"
    counts = [f"{name} ({len(labels):,})" for name, (_, labels) in table.items()]
    lines = [f"Lesson two's network trained on {data} with {how}, {options.seeds} "
             f"seed{'s' * (options.seeds > 1)}, {options.bends} bends of each font's digit; "
             f"torch {torch.__version__}. Read right, %: mean over seeds (lowest seed).", "",
             f"| digit | {' | '.join(counts)} |", f"| --- |{' --- |' * len(table)}"]
    for label, digit in [*((str(digit), digit) for digit in range(10)), ("all", None)]:
        cells = [cell(scored[name], labels, digit) for name, (_, labels) in table.items()]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def option_parser():
    parser = lesson_two_parser(__doc__.splitlines()[0])
    parser.add_argument("--bends", type=int, default=10,
                        help="bent copies of each font's digit (default: 10)")
    return parser


def main():
    options = option_parser().parse_args()
    root = tools.SAMPLE_DIR if options.sample else options.data_dir
    train_set, test_set = datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)
    mean, std = lesson.pixel_mean_and_std(train_set)
    settings = lesson_settings("handwriting", options.options)
    table = columns(test_set, options.bends)
    scored = {name: [] for name in table}
    for seed in range(options.seeds):
        model = trained_network(train_set, mean, std, seed, settings)
        for name, (digits, labels) in table.items():
            scored[name].append(per_digit(model, digits, labels, mean, std))
        print(f"seed {seed} done", file=sys.stderr)
    report = report_lines(scored, table, options)
    print("\n".join(report))
    if options.record:
        record(options.record, report)


if __name__ == "__main__":
    main()
