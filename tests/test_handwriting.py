"""Lesson two, your own handwriting, run the ways learners run it, on the committed sample,
offline, on the CPU: a terminal after lesson one, cell by cell in a kernel, Run All, and
papermill; then predict.py, which reads with lesson two's network by default."""

import shutil

import nbformat
import pytest
from lesson_runs import (
    HANDWRITING,
    HANDWRITING_FIGURES,
    HANDWRITING_NOTEBOOK,
    REPO,
    RESULT,
    Kernel,
    code_cells,
    fresh_clone,
    lesson_environment,
    offline,
    papermill_in_a_clone,
    run_lesson,
    run_predict,
)
from nbclient import NotebookClient
from run_outputs import figures_drawn, images_in, on_stderr, printed

import mnistlab_saved as saved
import mnistlab_tools as tools


@pytest.fixture(scope="module")
def after_lesson_one(trained_out_dir, tmp_path_factory):
    """`.venv/bin/python handwriting.py` in a fresh clone, offline, into an output folder where
    lesson one saved its network (a copy of the terminal run's), as a learner runs lesson two
    after one."""
    root = tmp_path_factory.mktemp("lesson two")
    fresh_clone(root)
    out_dir = root / "outputs"
    shutil.copytree(trained_out_dir, out_dir)
    finished = run_lesson(script=root / "handwriting.py", cwd=root,
                          environment=offline(lesson_environment(out_dir)))
    return finished, out_dir


def test_lesson_two_in_a_terminal_trains_with_other_pens_and_reads_the_photo(after_lesson_one):
    finished, out_dir = after_lesson_one
    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr and "Could not download MNIST" in finished.stdout
    for name in HANDWRITING_FIGURES:
        assert (out_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Its own network and training state, beside lesson one's, which it leaves as they were.
    _, record = tools.load_checkpoint(out_dir / "handwriting_cnn.pt", saved.DigitNet, "cpu")
    assert record["class_names"] == [str(digit) for digit in range(10)]
    assert record["outcome"]["training_images"] == 2000  # the sample's
    assert (out_dir / "handwriting_training.pt").exists() and (out_dir / "mnist_cnn.pt").exists()
    # The table compares it with lesson one's network, on digits with other pens.
    table = finished.stdout.split("Test digits read right, %:\n")[1].splitlines()
    assert table[0].split() == ["this", "lesson's", "lesson", "one's"]
    thick = dict(zip(["this", "one"], map(float, table[4].split()[-2:]), strict=True))
    assert table[4].startswith("2 pixels thicker") and thick["this"] > thick["one"], table
    assert "sample/photo_of_a_7.jpg: 7 (" in finished.stdout
    result = RESULT.search(finished.stdout)
    assert result and float(result["accuracy"]) > 70 and "with other pens" in finished.stdout


def test_predict_after_lesson_two_reads_with_its_network_and_says_so(after_lesson_one, tmp_path):
    _, out_dir = after_lesson_one
    finished = run_predict(str(REPO / "sample" / "photo_of_a_7.jpg"), cwd=tmp_path,
                           environment=lesson_environment(out_dir))
    assert finished.returncode == 0, finished.stderr
    assert (f"Reading with {out_dir / 'handwriting_cnn.pt'} (lesson two's): a network that "
            f"scored ") in finished.stdout
    assert "on its test set, trained on 2,000 images with other pens." in finished.stdout
    assert "photo_of_a_7.jpg: 7 (" in finished.stdout


def test_lesson_two_cell_by_cell_in_a_fresh_kernel(tmp_path):
    shown, everything = 0, []
    with Kernel(lesson_environment(tmp_path, sample=1)) as kernel:
        for source in code_cells(HANDWRITING):
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            assert not on_stderr(outputs), (source[:200], on_stderr(outputs))
            assert images_in(outputs) == figures_drawn(source), source[:200]
            shown += images_in(outputs)
            everything += outputs
    assert shown == len(HANDWRITING_FIGURES)
    # Without lesson one's network in out_dir, it says how to get one to compare with.
    assert ("run .venv/bin/python mnistlab.py --sample first, with the same out_dir"
            in printed(everything))
    assert (tmp_path / "handwriting_cnn.pt").exists() and not (tmp_path / "mnist_cnn.pt").exists()


def test_lesson_two_run_all_in_the_notebook(tmp_path, monkeypatch):
    for name, value in lesson_environment(tmp_path, sample=1).items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(HANDWRITING_NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert not on_stderr(outputs)
    assert images_in(outputs) == len(HANDWRITING_FIGURES)
    assert "There is no checkpoint at " in printed(outputs)
    assert "Lesson one's network is left out of the comparison" in printed(outputs)
    assert RESULT.search(printed(outputs)), printed(outputs)[-2000:]


def test_lesson_two_with_papermill_and_without_other_pens(tmp_path):
    finished, text = papermill_in_a_clone(tmp_path, HANDWRITING_NOTEBOOK, "augment", "False",
                                          "sample", "True", "out_dir", "pm out")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "augment=False" in text and "without other pens" in text
    assert (tmp_path / "pm out" / "handwriting_cnn.pt").exists()


def test_a_bad_value_in_lesson_two_stops_in_one_line(tmp_path):
    finished = run_lesson("--augment", "perhaps", script=HANDWRITING, cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert finished.returncode == 2 and finished.stdout == ""
    assert finished.stderr.strip().splitlines() == [
        "mnistlab: unrecognized arguments: perhaps. Run .venv/bin/python handwriting.py --help to "
        "see the settings."]
    finished = run_lesson("--photos", str(tmp_path / "nowhere.jpg"), script=HANDWRITING,
                          cwd=tmp_path, environment=lesson_environment(tmp_path / "out"))
    assert finished.returncode == 2 and "--photos" in finished.stderr
    assert ".venv/bin/python handwriting.py --help" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "out").exists()


def test_a_network_that_did_not_learn_reads_no_photos_and_replaces_nothing(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "handwriting_cnn.pt").write_bytes(b"a good network, saved before")
    finished = run_lesson("--sample", "--lr", "900", script=HANDWRITING, cwd=tmp_path,
                          environment=lesson_environment(out_dir))
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "does no better than guessing" in finished.stdout
    assert "Not saved: the network did not learn" in finished.stdout
    assert "would mean nothing" in finished.stdout and "photo_of_a_7.jpg:" not in finished.stdout
    assert (out_dir / "handwriting_cnn.pt").read_bytes() == b"a good network, saved before"
