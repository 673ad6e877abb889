"""docs/your-own-images.md, run as a learner runs it: the page's program, copied from its code
blocks, trains a network of its own on a folder of generated colour images of five classes. The
package is not changed for it, and gives it all that lesson one has: the network saved and
loaded back, never replaced by a lesser one, a cut run resumed to the uncut run's end, and the
figures, the confusion matrix and the misread images among them."""

import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from lesson_runs import REPO, lesson_environment
from PIL import Image, ImageDraw

import mnistlab_tools as tools

PAGE = REPO / "docs" / "your-own-images.md"
# One worker runs them all, so that they share the learner's folder and its first run.
pytestmark = pytest.mark.xdist_group("your own images")
SHAPES = ("circle", "cross", "square", "stripes", "triangle")


def draw_shape(shape, rng):
    """A 32 × 32 colour image of one shape, of a random light colour, size and place, on a noisy
    dark background of another colour."""
    background = tuple(rng.randrange(100) for _ in range(3))
    ink = tuple(rng.randrange(150, 256) for _ in range(3))
    image = Image.new("RGB", (32, 32), background)
    draw = ImageDraw.Draw(image)
    size, left, top = rng.randrange(10, 16), rng.randrange(0, 10), rng.randrange(0, 10)
    box = (left, top, left + 2 * size - 8, top + 2 * size - 8)
    if shape == "circle":
        draw.ellipse(box, fill=ink)
    elif shape == "square":
        draw.rectangle(box, fill=ink)
    elif shape == "triangle":
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])],
                     fill=ink)
    elif shape == "cross":
        draw.line([box[:2], box[2:]], fill=ink, width=3)
        draw.line([(box[0], box[3]), (box[2], box[1])], fill=ink, width=3)
    else:
        for x in range(box[0], box[2], 5):
            draw.line([(x, box[1]), (x, box[3])], fill=ink, width=2)
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).float()
    noisy = (pixels + 30 * torch.randn(pixels.shape, generator=rng.torch)).clamp(0, 255)
    return Image.frombytes("RGB", (32, 32), noisy.to(torch.uint8).numpy().tobytes())


def image_folder(root, count, seed):
    """root/SHAPE/NNN.png: `count` images of each shape."""
    rng = random.Random(seed)
    rng.torch = torch.Generator().manual_seed(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True)
        for number in range(count):
            draw_shape(shape, rng).save(root / shape / f"{number:03}.png")


def code_blocks():
    """The page's Python code blocks, in order."""
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def the_pages_program():
    """The page's code blocks as one program, my_images.py."""
    return "\n\n".join(code_blocks())


@pytest.fixture(scope="module")
def learners_folder(tmp_path_factory):
    """A learner's folder: my_images.py, as the page says to save it, and my_images/."""
    folder = tmp_path_factory.mktemp("learner")
    image_folder(folder / "my_images" / "train", 100, seed=1)
    image_folder(folder / "my_images" / "test", 20, seed=2)
    (folder / "my_images.py").write_text(the_pages_program())
    return folder


def my_images(folder, *options, started=False):
    """`python my_images.py OPTIONS` in the learner's folder, the repository on its path."""
    command = [sys.executable, "my_images.py", "--batch-size", "32", *options]
    environment = {**lesson_environment(folder / "outputs"), "PYTHONPATH": str(REPO),
                   "PYTHONUNBUFFERED": "1"}
    if started:
        return subprocess.Popen(command, cwd=folder, env=environment, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def first_run(learners_folder):
    """The page's program run for three epochs in the learner's folder, into outputs/."""
    return my_images(learners_folder, "--epochs", "3")


def test_the_program_on_the_page_trains_saves_and_draws_its_own_network(learners_folder,
                                                                         first_run):
    finished = first_run
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    said = finished.stdout
    assert "500 training and 100 test images of 5 classes: circle, cross, square, stripes, " \
           "triangle" in said
    last = float(re.findall(r"epoch 3: training loss [\d.]+, test accuracy ([\d.]+) %", said)[0])
    assert 50 < last < 100  # five classes: guessing gets 20 %; and some misread, to be shown
    assert "Saved the network to outputs/shapes_cnn.pt" in said
    assert f"Loaded back, it scores {last:.2f} % on the test images" in said
    outputs = learners_folder / "outputs"
    for figure in ("learning_curve", "what_the_network_sees", "confusion_matrix",
                   "misread_images"):
        assert (outputs / f"{figure}.png").read_bytes()[:4] == b"\x89PNG", figure
    assert f"{round(100 - last)} of 100 test images misread" in said
    # Read later, as the page's last words say: with the network class, and nothing else.
    namespace = {}
    exec("from torch import nn\n" + next(block for block in code_blocks()
                                          if "class ShapesNet" in block), namespace)
    model, saved = tools.load_checkpoint(outputs / "shapes_cnn.pt", namespace["ShapesNet"],
                                         "cpu")
    assert saved["class_names"] == list(SHAPES) and saved["arguments"] == {"classes": 5}
    assert len(saved["mean"]) == 3 and round(saved["outcome"]["accuracy"], 2) == last


def test_a_lesser_run_of_the_page_keeps_the_better_network(learners_folder, first_run):
    assert first_run.returncode == 0, first_run.stderr
    better = (learners_folder / "outputs" / "shapes_cnn.pt").read_bytes()
    finished = my_images(learners_folder, "--epochs", "1")
    assert finished.returncode == 0, finished.stderr
    assert "Kept outputs/shapes_cnn.pt" in finished.stdout
    assert "saved beside it as outputs/shapes_cnn.lower.pt, since it scored lower on the same " \
           "test set" in finished.stdout
    assert (learners_folder / "outputs" / "shapes_cnn.pt").read_bytes() == better


def test_a_cut_run_of_the_page_resumes_to_the_uncut_runs_end(learners_folder, tmp_path):
    uncut = my_images(learners_folder, "--epochs", "6", "--out-dir", str(tmp_path / "uncut"))
    assert uncut.returncode == 0, uncut.stderr
    end = re.findall(r"epoch 6: .*", uncut.stdout)[0]
    cut_dir = tmp_path / "cut"
    state = cut_dir / "shapes_training.pt"
    running = my_images(learners_folder, "--epochs", "6", "--out-dir", str(cut_dir),
                        started=True)
    deadline = time.monotonic() + 120
    while not state.exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    running.send_signal(signal.SIGINT)  # Ctrl-C, as soon as the first epoch is saved
    said, errors = running.communicate(timeout=120)
    assert running.returncode == 130 and "Traceback" not in errors, errors
    assert "epoch 6:" not in said and "Ctrl-C" in said
    resumed = my_images(learners_folder, "--epochs", "6", "--out-dir", str(cut_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"Resuming the run in .*shapes_training.pt after epoch \d+ of 6",
                     resumed.stdout)
    assert re.findall(r"epoch 6: .*", resumed.stdout)[0] == end


def test_a_wrong_option_to_the_pages_program_stops_in_one_line(learners_folder):
    finished = my_images(learners_folder, "--epochs", "0")
    assert finished.returncode == 2 and finished.stdout == ""
    assert finished.stderr.strip().splitlines() == [
        "mnistlab: argument --epochs: '0' is not allowed: use a whole number from 1 to 10,000. "
        "Run .venv/bin/python my_images.py --help to see the settings."]
