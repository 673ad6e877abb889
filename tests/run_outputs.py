"""What a run printed and drew, read as a learner sees it: the text of its outputs, the figures
it showed, the colours a figure's pixels show, and a plain stop of one line with no traceback."""

import re

import matplotlib.colors
import numpy


def colours_drawn(figure, names=("firebrick", "darkorange", "lightsteelblue")):
    """Which of these colours the figure's pixels show, drawn as the saved PNG is."""
    figure.canvas.draw()
    pixels = {tuple(pixel) for pixel in
              numpy.asarray(figure.canvas.buffer_rgba())[..., :3].reshape(-1, 3).tolist()}
    return {name for name in names
            if tuple(round(part * 255) for part in matplotlib.colors.to_rgb(name)) in pixels}


def figures_drawn(source):
    """How many figures a cell shows: one for each line that starts by showing one."""
    return len(re.findall(r"^\s*\w+\.show\(", source, re.M))


WIDGET = "application/vnd.jupyter.widget-view+json"


def images_in(outputs):
    """The figures among the outputs; a widget's picture of itself, for readers where widgets
    do not show, is none."""
    return sum("image/png" in output.get("data", {}) and WIDGET not in output.get("data", {})
               for output in outputs)


def widgets_in(outputs):
    return sum(WIDGET in output.get("data", {}) for output in outputs)


def printed(outputs):
    return "".join(output.get("text", "") for output in outputs)


def on_stderr(outputs):
    return "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")


def assert_plain_stop(finished, *phrases):
    """Exit status 2, no traceback, no training started, and a message with each phrase."""
    assert finished.returncode == 2, (finished.stdout, finished.stderr)
    assert "Traceback" not in finished.stderr and "epoch 1" not in finished.stdout
    message = finished.stderr.strip()
    assert message.startswith("mnistlab: ") and len(message.splitlines()) == 1, message
    for phrase in phrases:
        assert phrase in message, message
