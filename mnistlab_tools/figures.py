"""Showing and saving figures: each is saved as a PNG in the output folder and, in a notebook,
shown under its cell; the figures made of many small images; and the network's reading of a
photo, with its runner-up when it is unsure."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .console import IN_NOTEBOOK, printable, readable
from .files import save_file

UNSURE_BELOW = 0.6  # a best guess less likely than this is given with the runner-up


def show(figure, path=None):
    """Save the figure as a PNG at `path`, if one is given, whole or not at all; then show it
    under the cell in a notebook, or close it in a terminal, where nothing can show it."""
    if path and save_file(path, lambda partial: figure.savefig(partial, format="png", dpi=120,
                                                               bbox_inches="tight")):
        print(f"Saved the figure {readable(path)}")
    if IN_NOTEBOOK:
        plt.show()
    else:
        plt.close(figure)


def learning_curve(history, steps_per_epoch):
    """The training loss of every batch, and smoothed, against the epoch, with the test accuracy
    on a second axis: the probe's readings within the epochs, on a slice of the test set, and
    the whole test set's after each epoch (Run.history)."""
    import pandas as pd  # here, so that the lesson's first cells need not wait for pandas

    losses, accuracies = history["loss"], history["accuracy"]
    steps = pd.Series(losses, index=pd.RangeIndex(1, len(losses) + 1) / steps_per_epoch)
    figure, loss_axis = plt.subplots(figsize=(8, 4))
    loss_axis.plot(steps, ".-" if len(steps) < 50 else "-", color="lightsteelblue",
                   label="training loss, each batch")
    smoothed = steps.rolling(max(1, steps_per_epoch // 10), center=True, min_periods=1).mean()
    loss_axis.plot(smoothed, color="navy", label="training loss, smoothed")
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log",
                  title="Learning curve")
    accuracy_axis = loss_axis.twinx()
    probes = history.get("probes", [])
    if probes:
        accuracy_axis.plot([step / steps_per_epoch for step, _ in probes],
                           [accuracy for _, accuracy in probes], ".-", color="sandybrown",
                           label="test accuracy within the epoch (a slice)")
    epochs_done = range(1, len(accuracies) + 1)
    accuracy_axis.plot(epochs_done, accuracies, "o", color="darkorange",
                       label="test accuracy after the epoch (all)")
    lowest = min(accuracies + [accuracy for _, accuracy in probes])
    accuracy_axis.set(ylabel="test accuracy (%)", ylim=(max(0, lowest - 1), 100))
    accuracy_axis.annotate(f"{accuracies[-1]:.2f} %", (epochs_done[-1], accuracies[-1]),
                           textcoords="offset points", xytext=(-8, -14), ha="right",
                           color="darkorange")
    figure.legend(loc="upper center", bbox_to_anchor=(0.5, 0), ncol=2, frameon=False)
    return figure


def montage(tiles, columns):
    """Tiles of one size side by side in rows of `columns`, a pixel of NaN (drawn as the
    background) between them: one picture draws many times faster than a plot each."""
    count, height, width = tiles.shape[:3]
    columns = min(columns, count)
    rows = -(-count // columns)
    sheet = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1, *tiles.shape[3:]), np.nan)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        sheet[row * (height + 1):row * (height + 1) + height,
              column * (width + 1):column * (width + 1) + width] = tile
    return sheet


def picture(image):
    """An image tensor, (height, width) or (channels, height, width), as matplotlib draws it:
    grey, or colour with each channel stretched to 0…1."""
    image = np.asarray(image.float().cpu() if hasattr(image, "cpu") else image, dtype=float)
    if image.ndim == 3 and image.shape[0] == 3:
        image = image.transpose(1, 2, 0)
        low, high = image.min(axis=(0, 1)), image.max(axis=(0, 1))
        return (image - low) / np.where(high > low, high - low, 1)
    return image.reshape(image.shape[-2:])


def block_outputs(model, image):
    """The maps each block of the network makes of one image: the outputs of its ReLUs, or where
    it has none as modules, of its convolutions. The network is left as it was."""
    import torch  # here, as in the lesson's other figures: only once there is a network

    kinds = (torch.nn.ReLU,) if any(isinstance(layer, torch.nn.ReLU)
                                    for layer in model.modules()) else (torch.nn.Conv2d,)
    outputs = []
    hooks = [layer.register_forward_hook(lambda _, __, out: outputs.append(out))
             for layer in model.modules() if isinstance(layer, kinds)]
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(image[None])
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return [out[0].float().cpu().numpy() for out in outputs if out.dim() == 4]


def what_the_network_sees(model, image, label):
    """The first convolution's filters, and the maps that each block of the network makes of one
    scaled test image, shaped (channels, height, width), whose class is `label`. Any network with
    a convolution: the blocks end at its ReLUs. The network is left as it was."""
    import torch

    first = next(layer for layer in model.modules() if isinstance(layer, torch.nn.Conv2d))
    image = image.to(first.weight.device, torch.float32)
    blocks = block_outputs(model, image)
    weights = first.weight.detach().float().cpu().numpy()
    colour = weights.shape[1] == 3
    filters = weights.transpose(0, 2, 3, 1) if colour else weights[:, 0]
    reach = np.abs(filters).max()
    how = "(colours: the weights of red, green and blue)" if colour else (
        "(red: positive, blue: negative)")
    rows = [(montage(0.5 + filters / (2 * reach) if colour else filters, 16), "RdBu_r",
             f"The {len(filters)} filters of the first layer, {filters.shape[1]} × "
             f"{filters.shape[2]} weights each {how}")]
    rows += [(montage(block, 8 * number), "magma", f"After block {number}: its {len(block)} "
              f"maps of the test image, {block.shape[1]} × {block.shape[2]} each (bright: where "
              f"a map's feature is)") for number, block in enumerate(blocks, 1)]
    shapes = [sheet.shape[0] / sheet.shape[1] for sheet, *_ in rows]
    figure = plt.figure(figsize=(10, 10 * 0.8 * sum(shapes) + 0.5 * len(rows)),
                        layout="constrained")
    grid = figure.add_gridspec(len(rows), 2, width_ratios=[1, 4], height_ratios=shapes)
    shown = figure.add_subplot(grid[:, 0])
    shown.imshow(picture(image), cmap="gray")
    shown.set_title(f"A test image: {label}")
    shown.axis("off")
    for place, (sheet, colours, title) in enumerate(rows):
        axis = figure.add_subplot(grid[place, 1])
        axis.imshow(sheet, cmap=colours, **({"vmin": -reach, "vmax": reach}
                                             if place == 0 and not colour else {}))
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    return figure


def image_grid(images, captions, title, color="black"):
    """A figure of small images in rows, each with a caption above it, in `color` or in a colour
    of its own when `color` is a list. images: (count, height, width), grey, drawn dark on
    light, as ink on paper; or (count, 3, height, width), in colour."""
    # One picture of many small images draws several times faster than one plot per image.
    # Class names, such as "Ankle boot → Sneaker", need wider columns than digits.
    wide = max(len(caption) for caption in captions) > 8
    columns, inches = (6, 1.8) if wide else (10, 1)
    rows = -(-len(images) // columns)
    colors = color if isinstance(color, list) else [color] * len(images)
    height, width = images[0].shape[-2:]
    step, line = width + 6, height + 12  # room between the images, and for each caption
    figure, ax = plt.subplots(figsize=(columns * inches, (1.2 * rows + 0.3) * inches))
    for position, (image, caption, tint) in enumerate(zip(images, captions, colors, strict=True)):
        row, column = divmod(position, columns)
        ax.imshow(picture(image), cmap="gray_r",
                  extent=(step * column, step * column + width, -line * row - height, -line * row))
        ax.text(step * column + width / 2, -line * row + 2, caption, ha="center", va="bottom",
                color=tint, fontsize=9 if wide else 10)
    ax.set(xlim=(-3, step * columns - 3), ylim=(-line * rows + 8, 12), title=title)
    ax.axis("off")
    return figure


def reading(probabilities):
    """What the network reads in one digit, from its ten probabilities: its best guess, "7
    (98.5 %)", or, when that is under 60 %, its two likeliest, "4 or 9 (48 %, 41 %)"."""
    chances, digits = probabilities.topk(2)
    if chances[0] >= UNSURE_BELOW:
        return f"{digits[0]} ({chances[0] * 100:.1f} %)"
    return f"{digits[0]} or {digits[1]} ({chances[0] * 100:.0f} %, {chances[1] * 100:.0f} %)"


def readings_figure(images, probabilities, photos):
    """A prepared photo beside the bars of its ten probabilities; many photos, a grid of guesses.
    Where the network is unsure, its runner-up is named and drawn in orange too. photos: their
    paths, or names, each shown by its file's name."""
    names = [Path(photo).name for photo in photos]
    chances, guesses = probabilities.topk(2, dim=1)
    unsure = (chances[:, 0] < UNSURE_BELOW).tolist()
    if len(images) > 4:
        captions = [f"{first} or {second}?" if doubt else f"{first} ({chance * 100:.0f} %)"
                    for (first, second), chance, doubt in zip(guesses.tolist(),
                                                              chances[:, 0].tolist(), unsure,
                                                              strict=True)]
        return image_grid(images, captions, "Your digits as the network sees them, with its "
                          "guesses (orange: unsure between two)",
                          ["darkorange" if doubt else "black" for doubt in unsure])
    figure, axes = plt.subplots(len(images), 2, figsize=(8, 2.2 * len(images)), squeeze=False,
                                layout="constrained", gridspec_kw={"width_ratios": [1, 2.5]})
    for (picture, bars), image, row, (first, second), doubt, name in zip(
            axes, images, probabilities, guesses.tolist(), unsure, names, strict=True):
        picture.imshow(np.asarray(image), cmap="gray")
        picture.set(title=f"{printable(name)}, prepared", xticks=[], yticks=[])
        colors = ["lightsteelblue"] * 10
        colors[first] = "firebrick"
        if doubt:
            colors[second] = "darkorange"
        bars.bar(range(10), (row * 100).tolist(), color=colors)
        bars.set(xticks=range(10), ylim=(0, 100), ylabel="probability (%)",
                 title=f"unsure: {first} or {second}" if doubt else f"best guess: {first}")
    return figure
