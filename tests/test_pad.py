"""The drawing pad: a drawing is prepared as lesson two prepares a photo and read by each network
given; a blank box, a dot, a scribble or a damaged drawing get a line, never an exception; a
saved drawing is a PNG that predict.py reads; and where widgets do not show, a picture of the
pad's answer does. In a terminal, a line says where to draw instead. (A browser drawing on it
with the mouse: tests/test_real_clients.py.)"""

import base64
import io

import pytest
from lesson_runs import lesson_environment, run_predict
from PIL import Image, ImageDraw
from run_outputs import WIDGET

import mnistlab_saved as saved
from mnistlab_tools.pad import DrawingPad, drawn_seven


def drawn(*strokes, width=18):
    """A 280 × 280 canvas's PNG data URL, as the pad sends it: black strokes on white."""
    canvas = Image.new("RGB", (280, 280), "white")
    for stroke in strokes:
        ImageDraw.Draw(canvas).line(stroke, fill="black", width=width, joint="curve")
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def pad(sample_network, tmp_path):
    model, mean, std = sample_network
    return DrawingPad({"this lesson's": model, "lesson one's": None}, saved.prepare_digit, mean,
                      std, tmp_path / "out")


@pytest.mark.parametrize("drawing, digit", [
    (drawn([(140, 40), (140, 240)]), 1),
    (drawn_seven(), 7),
    (drawn([(80, 60), (200, 60), (200, 230), (80, 230), (80, 60)]), 0),
])
def test_a_drawing_is_read_by_each_network_as_a_prepared_photo(pad, drawing, digit):
    answer = pad.read(drawing)
    (reading,) = answer["readings"]  # a network that is None is left out
    assert reading["name"] == "this lesson's" and reading["guess"] == digit, reading["says"]
    assert len(reading["probabilities"]) == 10
    assert abs(sum(reading["probabilities"]) - 1) < 1e-4
    # What the network saw: the drawing as lesson two prepares a photo, 28 × 28.
    prepared = saved.prepare_digit(Image.open(io.BytesIO(base64.b64decode(
        drawing.split(",")[1]))).convert("RGB"))
    assert answer["image"] == pytest.approx(prepared.flatten().tolist())


@pytest.mark.parametrize("drawing, said", [
    (drawn(), "Draw a digit in the box"),
    (drawn([(139, 139), (141, 141)]), "That is a dot"),
    (drawn(*[[(0, y), (280, 280 - y)] for y in range(0, 281, 14)], width=24),
     "That fills the box"),
    (drawn([(30, 60), (30, 220)], [(250, 60), (250, 220)]), "Nothing to read: it seems to hold 2"),
    ("data:image/png;base64,AAAA", "The drawing could not be read"),
    ("", "The drawing could not be read"),
])
def test_what_is_no_digit_gets_a_line_not_an_exception(pad, drawing, said):
    answer = pad.read(drawing)
    assert answer["message"].startswith(said) and "readings" not in answer


def test_a_saved_drawing_is_a_png_that_predict_reads(pad, tmp_path, trained_out_dir):
    pad.saves += 1
    assert pad.answer["saved"] == "Draw a digit first, then save it."
    pad.drawing = drawn_seven()  # as the canvas sends it when a stroke ends
    assert pad.answer["readings"][0]["guess"] == 7
    pad.saves += 1
    saved_as = tmp_path / "out" / "drawn_1.png"
    assert pad.answer["saved"].startswith(f"Saved {saved_as}: .venv/bin/python predict.py ")
    assert Image.open(saved_as).size == (280, 280)
    pad.saves += 1  # a second drawing never replaces the first
    assert (tmp_path / "out" / "drawn_2.png").is_file()
    finished = run_predict(str(saved_as), cwd=tmp_path,
                           environment=lesson_environment(trained_out_dir))
    assert finished.returncode == 0 and "drawn_1.png: 7 (" in finished.stdout, finished.stdout


def test_where_widgets_do_not_show_a_picture_of_the_answer_does(pad):
    bundle = pad._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert WIDGET in data and data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(data["image/png"])).size[0] > 400


def test_two_pads_answer_each_for_itself(pad, sample_network, tmp_path):
    model, mean, std = sample_network
    other = DrawingPad({"again": model}, saved.prepare_digit, mean, std, tmp_path)
    pad.drawing = drawn([(140, 40), (140, 240)])
    other.drawing = drawn_seven()
    assert pad.answer["readings"][0]["guess"] == 1 and other.answer["readings"][0]["guess"] == 7


def test_a_terminal_run_says_where_to_draw_instead(terminal_run):
    assert "There is no drawing pad in a terminal: run this cell in VS Code or JupyterLab" in \
        terminal_run.finished.stdout
