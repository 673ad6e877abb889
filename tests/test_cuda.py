"""The lesson on a CUDA GPU: the three ways to run it, a GPU named by its index, the same seed
giving the same result, and out of memory provoked on purpose. Skipped, saying why, on a
machine without one."""

import nbformat
import pytest
import torch
from lesson_runs import (
    FIGURES,
    NOTEBOOK,
    REPO,
    RESULT,
    figures_of_every_cell,
    lesson_environment,
    run_lesson,
)
from nbclient import NotebookClient
from run_outputs import printed

from mnistlab_tools.device import out_of_memory_stops

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU, which this machine does not have")


def test_in_a_terminal_on_the_gpu_named_by_its_index(tmp_path):
    finished = run_lesson("--sample", "--device", "cuda:0", cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert finished.returncode == 0, finished.stderr
    assert "Training on cuda:0 (" in finished.stdout and "as asked" in finished.stdout
    assert RESULT.search(finished.stdout)["accuracy"]


def test_auto_takes_the_gpu_with_the_most_free_memory(tmp_path):
    finished = run_lesson("--sample", cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    frees = [torch.cuda.mem_get_info(index)[0] for index in range(torch.cuda.device_count())]
    assert f"Training on cuda:{frees.index(max(frees))} (" in finished.stdout, finished.stdout
    assert "GiB free" in finished.stdout


def test_cell_by_cell_and_run_all_on_the_gpu(tmp_path, monkeypatch):
    environment = lesson_environment(tmp_path / "cells", sample=1, device="cuda:0")
    assert figures_of_every_cell(environment) == len(FIGURES)
    for name, value in lesson_environment(tmp_path / "all", sample=1, device="cuda:0").items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert "Training on cuda:0" in printed(outputs) and RESULT.search(printed(outputs))


def test_the_same_seed_on_cuda_gives_the_same_result(tmp_path):
    runs = [run_lesson("--sample", "--epochs", "3", "--seed", "7", "--device", "cuda:0",
                       cwd=tmp_path, environment=lesson_environment(tmp_path / f"out{i}"))
            for i in range(2)]
    epochs = [[line for line in run.stdout.splitlines() if line.startswith("epoch ")]
              for run in runs]
    assert runs[0].returncode == 0, runs[0].stderr
    assert len(epochs[0]) == 3 and epochs[0] == epochs[1]


def test_out_of_memory_on_the_gpu_is_one_line_and_the_memory_comes_back(capsys):
    device = torch.device("cuda:0")
    free, _ = torch.cuda.mem_get_info(device)
    with pytest.raises(SystemExit) as stopped, out_of_memory_stops(device, 128):
        torch.empty(free // 4 * 2, dtype=torch.float32, device=device)  # twice what is free
    assert stopped.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "cuda:0 ran out of memory" in message
    assert "GiB free now" in message and "--batch-size" in message and "nvidia-smi" in message
    assert torch.cuda.memory_allocated(device) == 0
    assert torch.ones(1000, device=device).sum().item() == 1000  # the next run goes on
