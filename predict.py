"""Read photos of your own handwritten digits with the network the lesson saved, without training:

    .venv/bin/python predict.py my_7.jpg [more photos …]

It reads with the best network there is for handwriting: lesson two's, outputs/handwriting_cnn.pt,
trained with other pens, else lesson one's, outputs/mnist_cnn.pt (or the file named by
--checkpoint), and says which, and how well it did. It prepares each photo the way lesson two's
"Preparing a photo" explains, prints the network's best guess for each (its two likeliest, "4 or
9 (48 %, 41 %)", when the best is under 60 %), and saves the figure your_digits.png in the
output folder (--out-dir).
"""

import os
from pathlib import Path

import mnistlab_tools as tools

def read_options(arguments, environment):
    """The photos, the checkpoint and the device, from the command line and MNISTLAB_* variables,
    checked as the lessons check them (--out-dir, MNISTLAB_OUT_DIR; --device, MNISTLAB_DEVICE);
    a wrong one stops with one line."""

    def photos_and_checkpoint(parser):
        parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO",
                            help="photos or scans of one handwritten digit each (PNG, JPEG)")
        parser.add_argument("--checkpoint", type=Path, default=None,
                            help="the network saved by a lesson (default: handwriting_cnn.pt "
                            "in the output folder, else mnist_cnn.pt)")

    return tools.program_settings(f"{tools.PYTHON} predict.py", __doc__.splitlines()[0],
                                  ["out_dir", "device_name"], arguments, environment,
                                  photos_and_checkpoint)


# The networks predict.py looks for in the output folder, best for handwriting first, and what
# each is.
NETWORKS = (("handwriting", "lesson two's"),
            ("mnist", f"lesson one's; {tools.PYTHON} handwriting.py trains one that reads photos "
                      "better"))


def best_network(out_dir):
    """(path, what it is) of the best network for handwriting saved in out_dir."""
    for name, what in NETWORKS:
        path = tools.network_path(out_dir, name)
        if path.exists():
            return path, what
    tools.stop(f"There is no trained network in {tools.readable(out_dir)}: run "
               f"{tools.PYTHON} handwriting.py (or {tools.PYTHON} mnistlab.py) to train and save "
               f"one, or name one with --checkpoint.")


def trained_on_less(saved, other, network_class, device):
    """A line where the network `saved` was trained on fewer images than the one at `other`
    (lesson two on the sample, lesson one on all of MNIST), or None."""
    try:
        _, beside = tools.load_checkpoint(other, network_class, device)
    except tools.CheckpointError:
        return None
    counts = [record.get("outcome", {}).get("training_images") for record in (saved, beside)]
    if not all(isinstance(count, int) for count in counts) or counts[0] >= counts[1]:
        return None
    return (f"Note: it was trained on {counts[0]:,} images only, and {tools.readable(other)} "
            f"beside it on {counts[1]:,}: train lesson two on all of MNIST, or give that one "
            f"with --checkpoint.")


def networks_beside(checkpoint):
    """The networks a lesson saved beside this one, as NAME_cnn.WHY.pt, not to replace it."""
    return sorted(checkpoint.parent.glob(f"{checkpoint.stem}.*{checkpoint.suffix}"))


def read_photos(paths, checkpoint, device, what=""):
    """(digits, probabilities, paths_read): each photo that could be read, prepared like an MNIST
    digit; the ten probabilities the saved network gives it, with the pixels scaled by the mean
    and std it was trained with; and the paths of those photos. what: which network it is."""
    from mnistlab_saved import DigitNet, prepare_digit, read_digits

    model, saved = tools.load_checkpoint(checkpoint, DigitNet, device)
    if saved["class_names"] != [str(digit) for digit in range(10)]:
        raise tools.CheckpointError(
            f"{tools.readable(checkpoint)} tells apart {', '.join(saved['class_names'][:3])}, "
            f"…, not digits: name the MNIST network, "
            f"{tools.readable(tools.network_path(Path(checkpoint).parent, 'mnist'))}")
    digits, paths_read = tools.prepare_photos(paths, prepare_digit)
    which = f" ({what})" if what else ""
    print(f"Reading with {tools.readable(checkpoint)}{which}: {tools.network_record(saved)}.")
    lesson_one = tools.network_path(Path(checkpoint).parent, "mnist")
    if Path(checkpoint) != lesson_one:
        note = trained_on_less(saved, lesson_one, DigitNet, device)
        if note:
            print(note)
    for other in networks_beside(Path(checkpoint)):
        print(f"Beside it lies {tools.readable(other)}, which a lesson kept there rather than "
              f"over it; give it with --checkpoint to read with it.")
    return digits, read_digits(model, digits, saved["mean"], saved["std"]), paths_read


def main(arguments=None, environment=os.environ):
    options = read_options(arguments, environment)
    checkpoint, what = ((options.checkpoint, "") if options.checkpoint
                        else best_network(options.out_dir))
    device, _ = tools.pick_device(options.device_name)
    try:
        digits, probabilities, paths_read = read_photos(options.photos, checkpoint, device, what)
    except tools.CheckpointError as error:
        tools.stop(str(error))
    for path, chances in zip(paths_read, probabilities, strict=True):
        print(f"{tools.readable(path)}: {tools.reading(chances)}")
    tools.show(tools.readings_figure(digits, probabilities, paths_read),
               Path(options.out_dir) / "your_digits.png")


if __name__ == "__main__":
    tools.set_up_terminal()
    main()
