"""The lesson, run the ways learners run it, on the committed sample, offline, on the CPU: a
terminal, cell by cell in a kernel, Run All, and papermill with other parameters."""


import nbformat
import pytest
from lesson_runs import (
    FIGURES,
    NOTEBOOK,
    PAIRS,
    REPO,
    RESULT,
    Kernel,
    cell_index,
    tagged,
    code_cells,
    lesson_environment,
    papermill_in_a_clone,
    run_lesson,
)
from nbclient import NotebookClient
from run_outputs import figures_drawn, images_in, on_stderr, printed


def test_plain_python_from_another_folder_saves_the_figures(terminal_run):
    finished, out_dir = terminal_run.finished, terminal_run.out_dir
    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    for name in FIGURES:
        assert (out_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # Relative to where it ran.
        assert f"Saved the figure figures here/{name}.png" in finished.stdout
    assert (out_dir / "mnist_cnn.pt").stat().st_size > 10_000
    assert not list(out_dir.glob(".*.partial"))
    result = RESULT.search(finished.stdout)
    assert result and float(result["accuracy"]) > 70, finished.stdout
    assert "on 500 sample test digits" in finished.stdout
    assert "out_dir=figures here" in finished.stdout and "PosixPath" not in finished.stdout
    assert finished.stdout.count("not tried yet.") == 5  # the exercises, and the run goes on


def test_without_network_it_explains_and_falls_back_to_the_sample(terminal_run):
    finished = terminal_run.finished
    assert finished.returncode == 0, finished.stderr
    assert "Could not download MNIST" in finished.stdout
    for name in (
        "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        str(terminal_run.clone / "data" / "MNIST" / "raw"),
    ):
        assert name in finished.stdout
    assert "accuracy will be lower" in finished.stdout
    assert "on 500 sample test digits" in finished.stdout


def test_cell_by_cell_in_a_fresh_kernel_like_the_interactive_window(lesson_kernel):
    figures_shown = 0
    for source, status, outputs in lesson_kernel.first_run:
        assert status == "ok", (source[:200], outputs[-3:])
        assert images_in(outputs) == figures_drawn(source), source[:200]
        # Nothing looks like an error.
        assert not on_stderr(outputs), (source[:200], on_stderr(outputs))
        figures_shown += figures_drawn(source)
    # The counts are scikit-learn's, and the misclassified digits are exactly the wrong ones.
    status, outputs = lesson_kernel.run(
        "from sklearn.metrics import confusion_matrix as cm\n"
        "assert (confusion.to_numpy() == cm(test_labels, predicted, labels=range(10))).all()\n"
        "assert confusion.loc['9', '4'] == ((test_labels == 9) & (predicted == 4)).sum()\n"
        "assert wrong.tolist() == [i for i in range(len(test_labels))"
        " if test_labels[i] != predicted[i]]\n"
        "assert len(wrong) == confusion.to_numpy().sum() - confusion.to_numpy().trace()\n"
    )
    assert status == "ok", outputs
    assert figures_shown == len(FIGURES)


def test_run_all_in_the_notebook(tmp_path, monkeypatch):
    for name, value in lesson_environment(tmp_path, sample=1).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DISPLAY", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert not on_stderr(outputs)
    for cell in code:
        assert images_in(cell.outputs) == figures_drawn(cell.source), cell.source[:200]
    assert images_in(outputs) == len(FIGURES)
    assert RESULT.search(printed(outputs)), printed(outputs)[-2000:]
    for name in FIGURES:
        assert (tmp_path / f"{name}.png").exists()


def test_papermill_runs_the_notebook_with_other_parameters(tmp_path):
    finished, text = papermill_in_a_clone(tmp_path, NOTEBOOK, "epochs", "2", "sample", "True",
                                          "out_dir", "pm out")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "epochs=2" in text and "sample=True" in text
    assert "epoch 1:" in text and "epoch 2:" in text and "epoch 3:" not in text
    assert "on 500 sample test digits" in text
    assert (tmp_path / "pm out" / "mnist_cnn.pt").exists()


def test_editing_the_parameters_cell_takes_effect_without_a_restart(tmp_path):
    cells = code_cells()
    parameters = cell_index("parameters")
    training = cell_index("training")
    environment = lesson_environment(tmp_path, sample=1)
    with Kernel(environment) as kernel:
        for source in cells[: training + 1]:
            assert kernel.run(source)[0] == "ok"
        edited = (
            cells[parameters]
            .replace("epochs = 1 ", "epochs = 2 ")
            .replace("seed = 0 ", "seed = 5 ")
        )
        assert edited != cells[parameters]
        outputs = []
        for source in [edited, *cells[parameters + 1 : training + 1]]:
            status, more = kernel.run(source)
            assert status == "ok", more
            outputs += more
        text = printed(outputs)
        assert "epochs=2" in text and "seed=5" in text
        assert "epoch 2:" in text
        status, outputs = kernel.run(
            "print(settings.epochs, settings.seed, len(run.history['accuracy']))"
        )
        assert printed(outputs).split() == ["2", "5", "2"]


def test_an_environment_variable_wins_over_the_cell_and_says_so(tmp_path):
    cells = code_cells()
    with Kernel(lesson_environment(tmp_path, sample=1, epochs=3)) as kernel:
        for source in cells[: cell_index("setup") + 1]:
            status, outputs = kernel.run(source)
            assert status == "ok"
    assert "epochs=3" in printed(outputs) and "MNISTLAB_EPOCHS: epochs" in printed(outputs)


@pytest.mark.parametrize(
    "options, environment, named",
    [
        (["--epochs", "-1"], {}, "--epochs"),
        (["--device", "tpu"], {}, "--device"),
        ([], {"MNISTLAB_EPOCHS": "abc"}, "MNISTLAB_EPOCHS"),
        ([], {"MNISTLAB_BATCH_SIZE": "0"}, "MNISTLAB_BATCH_SIZE"),
    ],
)
def test_a_bad_setting_stops_with_one_line_and_status_2(tmp_path, options, environment, named):
    out_dir = tmp_path / "out"
    finished = run_lesson(
        *options, cwd=tmp_path, environment={**lesson_environment(out_dir), **environment}
    )
    assert finished.returncode == 2
    assert finished.stdout == ""
    assert len(finished.stderr.strip().splitlines()) == 1 and named in finished.stderr, (
        finished.stderr
    )
    assert not out_dir.exists()


def test_a_bad_value_in_the_parameters_cell_is_named_in_a_kernel(tmp_path):
    cells = code_cells()
    with Kernel(lesson_environment(tmp_path)) as kernel:
        for source in cells[: cell_index("setup") + 1]:
            assert kernel.run(source)[0] == "ok"  # good values first, as a learner would
        kernel.run(cells[cell_index("parameters")].replace("lr = 0.02 ", "lr = -1 "))
        status, outputs = kernel.run(cells[cell_index("setup")])
        assert status == "error"
        message = " ".join(str(output.get("evalue", "")) for output in outputs)
        assert "lr in the parameters cell" in message and "above 0" in message
        # The cells below stop with the same message, rather than run on with older values.
        status, outputs = kernel.run(cells[cell_index("device")])
        assert status == "error"
        assert "lr in the parameters cell" in " ".join(str(o.get("evalue", "")) for o in outputs)
    assert not (tmp_path / "mnist_cnn.pt").exists()


@pytest.mark.parametrize("lesson", PAIRS)
def test_help_lists_every_setting_of_the_lesson(tmp_path, lesson):
    from mnistlab_tools.settings import LESSONS, SETTINGS

    finished = run_lesson("--help", cwd=tmp_path, environment=lesson_environment(tmp_path),
                          script=PAIRS[lesson][0])
    assert finished.returncode == 0
    text = " ".join(finished.stdout.split())  # as wide as the terminal is
    assert text.startswith(f"usage: .venv/bin/python {PAIRS[lesson][0].name} ")
    for setting in SETTINGS:
        offered = setting.name in LESSONS[lesson].settings
        assert (setting.flag in text and setting.variable in text) == offered, setting.name
    epochs = {"mnistlab": 1, "handwriting": 5}[lesson]  # each lesson's own default
    assert "--device NAME" in text and f"(now: {epochs}; MNISTLAB_EPOCHS)" in text
    assert ("--dataset {mnist,fashion}" in text) == (lesson == "mnistlab")


def test_an_edit_of_the_parameters_cell_not_yet_read_is_pointed_out(lesson_kernel):
    cells = [source for source, *_ in lesson_kernel.first_run]
    parameters = cell_index("parameters")
    try:
        assert lesson_kernel.run(cells[parameters].replace("seed = 0 ", "seed = 5 "))[0] == "ok"
        status, outputs = lesson_kernel.run(cells[cell_index("training")])
        assert status == "ok"
        assert "the parameters cell was changed after the settings were read (seed)" in \
            printed(outputs)
    finally:
        lesson_kernel.run(cells[parameters])  # as it was, for the other tests of this kernel


def test_the_exercises_check_a_learners_answers_in_the_kernel(lesson_kernel):
    """Untried in the first run; then wrong, then right, as a learner edits each cell and runs it
    again."""
    cells = [source for source, *_ in lesson_kernel.first_run]
    untried = [printed(lesson_kernel.first_run[index][2]) for index in tagged("exercise")]
    assert len(untried) == 5 and all("not tried yet." in text for text in untried)
    pair = "max(((k, p) for k, p in confusion.stack().index if k != p), key=confusion.stack().get)"
    # (what the cell holds, a wrong answer put there, a right one)
    edits = [
        ("weights_of_a_narrower_network = None", "weights_of_a_narrower_network = 5970",
         "weights_of_a_narrower_network = 6018"),
        ("shape_of_32_by_32_features = None", "shape_of_32_by_32_features = (32, 4, 4)",
         "shape_of_32_by_32_features = (32, 5, 5)"),
        ("loss_before_training = None", "loss_before_training = 0.1",
         "import math\nloss_before_training = -math.log(1 / 10)"),
        ("most_frequent_mistake = None", "most_frequent_mistake = (0, 0)",
         f"most_frequent_mistake = {pair}"),
        ("return None  # your code here", "return (predicted == known).float().mean().item()",
         "return (predicted == known).float().mean().item() * 100"),
    ]
    for number, (phrase, wrong, right) in enumerate(edits, 1):
        source = next(cells[index] for index in tagged("exercise") if phrase in cells[index])
        for answer, verdict in ((wrong, "not yet. Hint: "), (right, "right. ")):
            status, outputs = lesson_kernel.run(source.replace(phrase, answer))
            assert status == "ok" and f"Exercise {number}: {verdict}" in printed(outputs), (
                answer, printed(outputs))
