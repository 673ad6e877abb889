"""The tests' fixtures: what several tests share, made once where a test does not need its own
(trained runs, a mirror, an SSH server, real file systems)."""

import functools
import http.server
import os
import shutil
import subprocess
import threading
from types import SimpleNamespace

import nbformat
import pytest
import torch
from fake_data import QuietHandler, write_mnist_like
from lesson_runs import (
    RANKS_RUN,
    REPO,
    TORCHRUN,
    Kernel,
    code_cells,
    fresh_clone,
    lesson_environment,
    offline,
    run_lesson,
)
from nbclient import NotebookClient
from real_systems import Server, tmpfs
from run_outputs import printed
from torchvision import datasets

import mnistlab_saved as saved
import mnistlab_tools as tools
from mnistlab_tools.settings import SETTINGS

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # The workers share the machine's cores: PyTorch's threads in each, and in every lesson and
    # kernel they start, would spin waiting for the others' to yield.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


# What several tests share, made once in each pytest-xdist worker that runs one of them: the tests
# that share one run in one worker (its xdist_group), so that it is made once in all.
SHARED = {"terminal_run": "sample runs in a terminal",
          "ascii_terminal_run": "sample runs in a terminal",
          "lesson_kernel": "the lesson's kernel",
          "sample_network": "a network trained on the sample",
          # The Slurm job of lesson three ends where this uncut run ends: one worker runs both.
          "two_ranks_run": "slurm"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        # fixturenames holds the fixtures a test uses through others too.
        groups = sorted(SHARED[name] for name in item.fixturenames if name in SHARED)
        if groups:
            item.add_marker(pytest.mark.xdist_group(groups[0]))


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KB file system, full after a few writes."""
    with tmpfs(tmp_path / "disk", "256k") as disk:
        yield disk


@pytest.fixture
def read_only_clone(tmp_path):
    """A fresh clone on a real read-only file system, as a learner may be given one."""
    with tmpfs(tmp_path / "clone", "16m") as disk:
        fresh_clone(disk)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        yield disk


@pytest.fixture
def mirror(tmp_path):
    """A small HTTP server on 127.0.0.1 serving MNIST-shaped .gz files, as the real mirror does."""
    served = tmp_path / "served"
    write_mnist_like(served, packed=True)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=served)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def network_trained_on_sample(augment, seed=0, epochs=5):
    """(DigitNet, mean, std): lesson two's recipe on the committed sample, with or without other
    pens (lesson one's recipe is lesson two's without them), and the pixels' mean and spread."""
    train, cpu = datasets.MNIST(tools.SAMPLE_DIR, train=True), torch.device("cpu")
    mean, std = saved.pixel_mean_and_std(train)
    images, labels = saved.to_tensors(train, mean, std, cpu)
    default = {setting.name: setting.default for setting in SETTINGS}
    model = saved.fresh_network(default["channels"], seed, cpu)
    steps_per_epoch = saved.steps_in_an_epoch(images, default["batch_size"])
    optimizer, scheduler = saved.one_cycle_adam(model, default["lr"], epochs * steps_per_epoch)
    for _ in range(epochs):
        batches = saved.shuffled_batches(images, labels, default["batch_size"])
        saved.train_one_epoch(model, optimizer, scheduler,
                              saved.with_other_pens(batches) if augment else batches)
    return model.eval(), mean, std


@pytest.fixture(scope="session")
def sample_network():
    """DigitNet trained on the committed sample for 5 epochs, as lesson two trains it (with other
    pens), with the pixels' mean and spread."""
    return network_trained_on_sample(augment=True)


@pytest.fixture(scope="session")
def two_ranks_run(tmp_path_factory):
    """`torchrun --standalone --nproc-per-node=2 ddp.py` of RANKS_RUN, uncut, into `out_dir`:
    two CPU ranks talking through gloo, with one thread each, as a Slurm task of one CPU has."""
    root = tmp_path_factory.mktemp("two-ranks")
    environment = {**lesson_environment(root / "out"), **RANKS_RUN, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node=2",
                               str(REPO / "ddp.py")], cwd=root, env=environment,
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    return SimpleNamespace(finished=finished, out_dir=root / "out", root=root)


@pytest.fixture(scope="session")
def terminal_run(tmp_path_factory):
    """`python mnistlab.py --out-dir "figures here"` in a fresh clone, with no network, started
    from another folder, as a learner behind a firewall runs it first: it falls back to the
    sample. Several tests read what it printed and saved; none of them changes it."""
    root = tmp_path_factory.mktemp("terminal")
    (root / "clone").mkdir()
    (root / "elsewhere").mkdir()
    finished = run_lesson("--out-dir", "figures here", script=fresh_clone(root / "clone"),
                          cwd=root / "elsewhere",
                          environment=offline(lesson_environment(root / "unused")))
    return SimpleNamespace(finished=finished, clone=root / "clone",
                           out_dir=root / "elsewhere" / "figures here")


@pytest.fixture(scope="session")
def trained_out_dir(terminal_run, tmp_path_factory):
    """An output folder holding the checkpoint of a sample run, as after running the lesson once
    (a copy of the terminal run's)."""
    assert terminal_run.finished.returncode == 0, terminal_run.finished.stderr
    out_dir = tmp_path_factory.mktemp("trained") / "outputs"
    shutil.copytree(terminal_run.out_dir, out_dir)
    return out_dir


@pytest.fixture(scope="session")
def fashion_run_all(trained_out_dir, tmp_path_factory):
    """Run All of mnistlab.ipynb in a fresh clone on the Fashion-MNIST sample, for two epochs,
    with TensorBoard, into an output folder that already holds a sample run's MNIST network.
    A last cell, added, prints the confusion matrix's axis labels (`axis_labels`)."""
    root = tmp_path_factory.mktemp("fashion")
    fresh_clone(root)
    shutil.copy2(REPO / "mnistlab.ipynb", root / "mnistlab.ipynb")
    out_dir = root / "out"
    shutil.copytree(trained_out_dir, out_dir)
    notebook = nbformat.read(root / "mnistlab.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "print([label.get_text() for label in table_axis.get_yticklabels()], "
        "table_axis.get_ylabel())"))
    with pytest.MonkeyPatch.context() as patch:  # the kernel's environment is this process's
        for name, value in lesson_environment(out_dir, sample=1, dataset="fashion", tensorboard=1,
                                              epochs=2).items():
            patch.setenv(name, value)
        NotebookClient(notebook, timeout=240, kernel_name="python3",
                       resources={"metadata": {"path": str(root)}}).execute()
    *lesson, probe = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in lesson for output in cell.outputs]
    return SimpleNamespace(root=root, out_dir=out_dir, outputs=outputs,
                           axis_labels=printed(probe.outputs))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("ssh")) as running:
        yield running


@pytest.fixture(scope="session")
def lesson_kernel(tmp_path_factory):
    """A Jupyter kernel that ran every code cell of the lesson once, in order, as VS Code's
    Interactive Window sends them (on the sample, two epochs): `first_run` holds each cell's
    source, reply status and outputs. Tests may run more code in it, but change no setting."""
    environment = lesson_environment(tmp_path_factory.mktemp("kernel"), sample=1, epochs=2)
    with Kernel(environment) as kernel:
        kernel.first_run = [(source, *kernel.run(source)) for source in code_cells()]
        yield kernel

