"""The lesson, run the three ways learners run it, on the committed sample, offline, on the CPU."""
import nbformat
import pytest
from nbclient import NotebookClient

from conftest import (FIGURES, NOTEBOOK, REPO, RESULT, Kernel, code_cells, figures_drawn, fresh_clone, images_in,
                      lesson_environment, offline, run_lesson)


def test_plain_python_from_another_folder_saves_the_figures(tmp_path):
    out_dir = tmp_path / "figures here"
    finished = run_lesson("--sample", "--out-dir", str(out_dir), cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "unused"))
    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    for name in FIGURES:
        assert (out_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"Saved the figure figures here/{name}.png" in finished.stdout  # relative to where it ran
    assert (out_dir / "mnist_cnn.pt").stat().st_size > 10_000
    assert not list(out_dir.glob(".*.partial"))
    result = RESULT.search(finished.stdout)
    assert result and float(result["accuracy"]) > 70, finished.stdout
    assert "on 500 sample test digits" in finished.stdout


def test_without_network_it_explains_and_falls_back_to_the_sample(tmp_path):
    script = fresh_clone(tmp_path)
    finished = run_lesson(cwd=tmp_path, script=script, environment=offline(lesson_environment(tmp_path / "out")))
    assert finished.returncode == 0, finished.stderr
    assert "Could not download MNIST" in finished.stdout
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(tmp_path / "data" / "MNIST" / "raw")):
        assert name in finished.stdout
    assert "accuracy will be lower" in finished.stdout
    assert "on 500 sample test digits" in finished.stdout


def test_cell_by_cell_in_a_fresh_kernel_like_the_interactive_window(tmp_path):
    figures_shown = 0
    with Kernel(lesson_environment(tmp_path, sample=1)) as kernel:
        for source in code_cells():
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            assert images_in(outputs) == figures_drawn(source), source[:200]
            figures_shown += figures_drawn(source)
    assert figures_shown == len(FIGURES)


def test_run_all_in_the_notebook(tmp_path, monkeypatch):
    for name, value in lesson_environment(tmp_path, sample=1).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DISPLAY", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
    for cell in code_cells:
        assert images_in(cell.outputs) == figures_drawn(cell.source), cell.source[:200]
    assert sum(images_in(cell.outputs) for cell in code_cells) == len(FIGURES)
    printed = "".join(output.get("text", "") for cell in code_cells for output in cell.outputs)
    assert RESULT.search(printed), printed[-2000:]
    for name in FIGURES:
        assert (tmp_path / f"{name}.png").exists()


@pytest.mark.parametrize("options, environment, named", [
    (["--epochs", "-1"], {}, "--epochs"),
    (["--device", "tpu"], {}, "--device"),
    ([], {"MNISTLAB_EPOCHS": "abc"}, "MNISTLAB_EPOCHS"),
    ([], {"MNISTLAB_BATCH_SIZE": "0"}, "MNISTLAB_BATCH_SIZE"),
])
def test_a_bad_setting_stops_with_one_line_and_status_2(tmp_path, options, environment, named):
    out_dir = tmp_path / "out"
    finished = run_lesson(*options, cwd=tmp_path, environment={**lesson_environment(out_dir), **environment})
    assert finished.returncode == 2
    assert finished.stdout == ""
    assert len(finished.stderr.strip().splitlines()) == 1 and named in finished.stderr, finished.stderr
    assert not out_dir.exists()


def test_asking_for_a_missing_gpu_names_the_devices_there(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    finished = run_lesson("--device", "cuda", "--sample", cwd=tmp_path, environment=lesson_environment(tmp_path))
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert "available: " in finished.stderr and "cpu" in finished.stderr.split("available: ")[1]


def test_help_lists_every_setting(tmp_path):
    finished = run_lesson("--help", cwd=tmp_path, environment=lesson_environment(tmp_path))
    assert finished.returncode == 0
    for option in ["--epochs", "--batch-size", "--lr", "--seed", "--device", "--data-dir", "--sample", "--out-dir"]:
        assert option in finished.stdout
    assert "{auto,cuda,mps,cpu}" in finished.stdout and "MNISTLAB_EPOCHS" in finished.stdout
