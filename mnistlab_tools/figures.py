"""Showing and saving figures: each is saved as a PNG in the output folder and, in a notebook,
shown under its cell; and the two figures made of many small images."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .console import IN_NOTEBOOK, printable, readable
from .files import save_file, why_not_writable


class Figures:
    """Saves each figure as a PNG in out_dir and, in a notebook, shows it under the cell."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        reason = why_not_writable(self.out_dir)
        self.can_save = reason is None
        if reason:
            print(f"Warning: cannot write to {readable(self.out_dir)} ({reason}). The lesson goes "
                  f"on, but its figures and the trained model will not be saved. Choose another "
                  f"folder with --out-dir or MNISTLAB_OUT_DIR.")

    def show(self, figure, name):
        path = self.out_dir / f"{name}.png"
        if self.can_save and save_file(
            path, lambda partial: figure.savefig(partial, format="png", dpi=120,
                                                 bbox_inches="tight")):
            print(f"Saved the figure {readable(path)}")
        if IN_NOTEBOOK:
            plt.show()
        else:
            plt.close(figure)


def digit_grid(images, captions, title, color="black"):
    """A figure of small images in rows, each with a caption above it."""
    # One picture of many small images draws several times faster than one plot per image.
    # Class names, such as "Ankle boot → Sneaker", need wider columns than digits.
    wide = max(len(caption) for caption in captions) > 8
    columns, inches = (6, 1.8) if wide else (10, 1)
    rows = -(-len(images) // columns)
    figure, ax = plt.subplots(figsize=(columns * inches, (1.2 * rows + 0.3) * inches))
    for position, (image, caption) in enumerate(zip(images, captions, strict=True)):
        row, column = divmod(position, columns)
        ax.imshow(np.asarray(image), cmap="gray_r",
                  extent=(34 * column, 34 * column + 28, -40 * row - 28, -40 * row))
        ax.text(34 * column + 14, -40 * row + 2, caption, ha="center", va="bottom", color=color,
                fontsize=9 if wide else 10)
    ax.set(xlim=(-3, 34 * columns - 3), ylim=(-40 * rows + 8, 12), title=title)
    ax.axis("off")
    return figure


def readings_figure(images, probabilities, names):
    """A prepared photo beside the bars of its ten probabilities; many photos, a grid of guesses."""
    best = probabilities.argmax(dim=1).tolist()
    if len(images) > 4:
        captions = [f"{guess} ({probabilities[i, guess] * 100:.0f} %)"
                    for i, guess in enumerate(best)]
        return digit_grid(images, captions,
                          "Your digits as the network sees them, with its guesses")
    figure, axes = plt.subplots(len(images), 2, figsize=(8, 2.2 * len(images)), squeeze=False,
                                layout="constrained", gridspec_kw={"width_ratios": [1, 2.5]})
    for (picture, bars), image, row, guess, name in zip(axes, images, probabilities, best, names,
                                                         strict=True):
        picture.imshow(np.asarray(image), cmap="gray")
        picture.set(title=f"{printable(name)}, prepared", xticks=[], yticks=[])
        bars.bar(range(10), (row * 100).tolist(),
                 color=["firebrick" if d == guess else "lightsteelblue" for d in range(10)])
        bars.set(xticks=range(10), ylim=(0, 100), ylabel="probability (%)",
                 title=f"best guess: {guess}")
    return figure
