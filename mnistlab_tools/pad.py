"""The drawing pad: draw a digit with the mouse in the notebook, and see the network you trained
read it. An anywidget of our own (pad.js, pad.css), whose JavaScript comes with this package, so
that it needs no CDN, no font and no server extension beyond what anywidget installs. The kernel
prepares each drawing with the lesson's own preparation of a photo, and answers with the image
the network saw and each network's ten probabilities. In a terminal there is no pad: a line says
where to draw instead."""

import base64
import io
import itertools
from pathlib import Path

import anywidget
import traitlets

from .console import IN_NOTEBOOK, PYTHON, readable
from .figures import reading
from .files import save_file

HERE = Path(__file__).parent


class DrawingPad(anywidget.AnyWidget):
    """A canvas to draw on, and what each network reads in the drawing (see the module)."""

    _esm = HERE / "pad.js"
    _css = HERE / "pad.css"
    drawing = traitlets.Unicode("").tag(sync=True)  # the canvas, as a PNG data URL
    answer = traitlets.Dict().tag(sync=True)  # image, readings, message, saved
    saves = traitlets.Int(0).tag(sync=True)  # clicks of "Save as PNG"

    def __init__(self, networks, prepare, mean, std, folder):
        super().__init__(answer={"message": "Draw a digit in the box, as large as the box."})
        self.networks = {name: model for name, model in networks.items() if model is not None}
        self.prepare, self.mean, self.std, self.folder = prepare, mean, std, Path(folder)

    @traitlets.observe("drawing")
    def _read_the_drawing(self, change):
        self.answer = self.read(change["new"])

    @traitlets.observe("saves")
    def _save_the_drawing(self, _):
        self.answer = {**self.answer, "saved": self.save()}

    def read(self, data_url):
        """The answer to a drawing: never an exception, which a widget would only log."""
        try:
            photo = image_of(data_url)
            odd = odd_drawing(photo)
            if odd:
                return {"message": odd}
            digit = self.prepare(photo)
        except ValueError as error:  # blank, a scribble with no digit, several digits
            return {"message": f"Nothing to read: {error}. Draw one digit, as large as the box."}
        except Exception as error:  # a damaged drawing, or a preparation edited into trouble
            return {"message": f"The drawing could not be read ({type(error).__name__}: "
                               f"{error}). Clear it and draw again."}
        return {"image": digit.flatten().clamp(0, 1).tolist(),
                "readings": [network_reading(name, model, digit, self.mean, self.std)
                             for name, model in self.networks.items()]}

    def save(self):
        """Save the last drawing as drawn_N.png in the folder; what happened, in a line."""
        if not self.drawing:
            return "Draw a digit first, then save it."
        for number in itertools.count(1):
            path = self.folder / f"drawn_{number}.png"
            if not path.exists():
                break
        png = base64.b64decode(self.drawing.split(",", 1)[-1])
        if not save_file(path, lambda file: file.write(png)):
            return f"Could not save {readable(path)}: see the kernel's output for why."
        return f"Saved {readable(path)}: {PYTHON} predict.py {readable(path)} reads it."

    def _repr_mimebundle_(self, **kwargs):
        """The widget, and for readers where widgets do not show (GitHub, a terminal's
        nbconvert), a picture of what the pad answers for a digit drawn in advance."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["image/png"] = example_png(self)
            data["text/plain"] = "A drawing pad: draw a digit, and see what the network reads."
        return bundle


def image_of(data_url):
    """The PIL image a canvas's PNG data URL holds."""
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[-1]))).convert("RGB")


def odd_drawing(photo):
    """What is odd about a drawing that is no digit to read, in a line; None for a drawing that
    may be one. A dot, blown up to MNIST's size, would read as a confident 0; a box scribbled
    full, as anything."""
    import numpy as np

    ink = np.asarray(photo.convert("L")) < 128
    if not ink.any():
        return "Draw a digit in the box, as large as the box."
    rows, columns = np.nonzero(ink)
    extent = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
    if extent < 0.15 * max(ink.shape):
        return "That is a dot, or a very small digit: draw one as large as the box."
    if ink.mean() > 0.4:
        return "That fills the box: clear it, and draw one digit with a few strokes."
    return None


def network_reading(name, model, digit, mean, std):
    """What one network reads in a prepared digit: its ten probabilities, best guess, words."""
    import torch

    was_training, device = model.training, next(model.parameters()).device
    with torch.inference_mode():
        scores = model.eval()(((digit - mean) / std)[None, None].to(device))
    model.train(was_training)
    probabilities = scores.softmax(dim=1)[0].float().cpu()
    return {"name": name, "probabilities": probabilities.tolist(),
            "guess": int(probabilities.argmax()), "says": reading(probabilities)}


def drawn_seven():
    """A 7 drawn as a learner draws one with the mouse: a bar, and a stroke down from its end."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(canvas).line([(70, 60), (210, 60), (120, 230)], fill="black", width=18,
                                joint="curve")
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def example_png(pad):
    """The pad's answer to drawn_seven, drawn as a PNG: the drawing, what the network saw, and
    each network's bars."""
    import numpy as np
    from matplotlib.figure import Figure

    drawing = drawn_seven()
    answer = pad.read(drawing)
    readings = answer.get("readings", [])
    figure = Figure(figsize=(3 + 2.6 * len(readings), 2.4), layout="constrained")
    axes = figure.subplots(1, 2 + len(readings), squeeze=False)[0]
    axes[0].imshow(np.asarray(image_of(drawing)))
    axes[0].set_title("drawn with the mouse", fontsize=9)
    if "image" in answer:
        axes[1].imshow(np.reshape(answer["image"], (28, 28)), cmap="gray")
    axes[1].set_title("what the network sees", fontsize=9)
    for axis in axes[:2]:
        axis.set(xticks=[], yticks=[])
    for axis, read in zip(axes[2:], readings, strict=True):
        colours = ["firebrick" if digit == read["guess"] else "lightsteelblue"
                   for digit in range(10)]
        axis.bar(range(10), [100 * p for p in read["probabilities"]], color=colours)
        axis.set(xticks=range(10), ylim=(0, 100), yticks=[])
        axis.set_title(f"{read['name']}: {read['says']}", fontsize=9)
    figure.suptitle("The drawing pad's answer to a drawn 7 (the pad itself shows where widgets "
                    "run)", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def drawing_pad(networks, prepare, mean, std, folder):
    """A pad to draw a digit on, read by each of `networks` ({name: model}; a None is left out)
    after `prepare` (lesson two's prepare_digit) makes it an MNIST digit scaled by mean and std;
    Save as PNG writes drawn_N.png in `folder`. In a terminal, where there is nothing to draw
    on, a line that says where to draw instead, and None."""
    if not IN_NOTEBOOK:
        print(f"There is no drawing pad in a terminal: run this cell in VS Code or JupyterLab to "
              f"draw a digit with the mouse. Here, write one on paper, photograph it, and read "
              f"it with: {PYTHON} predict.py PHOTO")
        return None
    return DrawingPad(networks, prepare, mean, std, folder)
