"""How the tests run the lessons as a learner would: where each lesson and its files are, a
terminal, a kernel fed cell by cell, papermill, a fresh clone, offline, as a user without rights."""

import ast
import importlib.util
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
import torch
from jupyter_client.manager import start_new_kernel
from run_outputs import images_in, printed

import mnistlab_saved as saved
import mnistlab_tools as tools

REPO = Path(__file__).resolve().parent.parent


SCRIPT = REPO / "mnistlab.py"


NOTEBOOK = REPO / "mnistlab.ipynb"


# Lesson two, your own handwriting.
HANDWRITING = REPO / "handwriting.py"


HANDWRITING_NOTEBOOK = REPO / "handwriting.ipynb"


# Each lesson (a key of mnistlab_tools.settings.LESSONS): its script and its notebook.
PAIRS = {"mnistlab": (SCRIPT, NOTEBOOK), "handwriting": (HANDWRITING, HANDWRITING_NOTEBOOK)}


TORCHRUN = Path(sys.executable).parent / "torchrun"  # beside the Python that runs the tests
# Lesson three's run on the sample that tests cut and resume, by hand and on Slurm: four epochs of
# 125 batches, so that a signal sent once epoch 1 is saved finds it still training.
RANKS_RUN = {"MNISTLAB_SAMPLE": "1", "MNISTLAB_EPOCHS": "4", "MNISTLAB_BATCH_SIZE": "16"}

# What a fresh clone holds for the lessons to run: the lessons, their modules, and the sample.
LESSON_FILES = ["mnistlab.py", "handwriting.py", "ddp.py", "mnistlab_saved.py", "predict.py",
                "requirements.txt"]


FIGURES = [
    "sample_digits",
    "learning_curve",
    "what_the_network_sees",
    "confusion_matrix",
    "misclassified_digits",
]


HANDWRITING_FIGURES = ["a_batch_with_other_pens", "your_digits"]


RESULT = re.compile(
    r"^Result: (?P<seconds>[\d.]+) s of training on [\w: ]+, "
    r"test accuracy (?P<accuracy>[\d.]+) %",
    re.M,
)


def lesson_environment(out_dir, **settings):
    """The user's environment with no display, no stray MNISTLAB_* settings, and the given ones."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MNISTLAB_")
        and name not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
    }
    environment["MNISTLAB_OUT_DIR"] = str(out_dir)
    environment.update({f"MNISTLAB_{name.upper()}": str(value) for name, value in settings.items()})
    return environment


def as_a_user_without_rights():
    """The start of a command that runs as a user whom file permissions bind. Root passes every
    permission check, so root drops the two capabilities that let it; anyone else already is one."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def run_lesson(*options, cwd, environment, script=SCRIPT, timeout=300, without_rights=False):
    """`python mnistlab.py OPTIONS` in a terminal, started from `cwd`."""
    user = as_a_user_without_rights() if without_rights else []
    return subprocess.run(
        [*user, sys.executable, str(script), *options],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class StartedLesson:
    """`python mnistlab.py OPTIONS` started in a terminal, to be signalled while it runs: what it
    prints is read as it comes, every wait has a time limit, and it is killed at the end of the
    `with` block if still running."""

    def __init__(self, *options, cwd, out_dir):
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), *options], cwd=cwd,
            env={**lesson_environment(out_dir), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self.lines, self.errors = queue.Queue(), []
        # Both pipes are read all along: the progress bar alone would fill stderr's.
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put),
                         daemon=True).start()
        self._reading_errors = threading.Thread(
            target=self._read, args=(self.process.stderr, self.errors.append), daemon=True)
        self._reading_errors.start()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.kill()
        self.process.wait(timeout=30)

    @staticmethod
    def _read(pipe, keep):
        for line in pipe:
            keep(line)
        keep("")

    def printed_until(self, prefix, seconds=120):
        """What it printed up to its first line that starts with `prefix`."""
        deadline, printed = time.monotonic() + seconds, []
        while not printed or not printed[-1].startswith(prefix):
            try:
                printed.append(self.lines.get(timeout=max(0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no line starting {prefix!r} in {seconds} s: {''.join(printed)}")
            assert printed[-1], f"it ended before {prefix!r}: {''.join(printed + self.errors)}"
        return "".join(printed)

    def signal(self, number):
        self.process.send_signal(number)

    def finished(self, seconds=120):
        """(exit status, the rest of what it printed, what it printed on stderr) once it ends."""
        status = self.process.wait(timeout=seconds)
        self._reading_errors.join(timeout=10)
        rest = []
        while not rest or rest[-1]:
            rest.append(self.lines.get(timeout=10))
        return status, "".join(rest), "".join(self.errors)


def run_predict(*arguments, cwd, environment, folder=REPO, without_rights=False):
    """`python predict.py ARGUMENTS` in a terminal, started from `cwd`."""
    user = as_a_user_without_rights() if without_rights else []
    return subprocess.run(
        [*user, sys.executable, str(folder / "predict.py"), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def papermill_in_a_clone(folder, notebook, *parameters):
    """papermill NOTEBOOK done.ipynb -p NAME VALUE … in a fresh clone in `folder`, with the
    parameters alone, as a learner runs it: (the finished process, what the cells printed)."""
    fresh_clone(folder)
    shutil.copy2(notebook, folder / notebook.name)
    environment = lesson_environment(folder / "unused")
    del environment["MNISTLAB_OUT_DIR"]
    options = [word for name, value in zip(parameters[::2], parameters[1::2], strict=True)
               for word in ("-p", name, value)]
    finished = subprocess.run([sys.executable, "-m", "papermill", notebook.name, "done.ipynb",
                               *options], cwd=folder, env=environment, capture_output=True,
                              text=True, timeout=300)
    if finished.returncode:
        return finished, ""
    return finished, printed(output for cell in nbformat.read(folder / "done.ipynb", 4).cells
                             if cell.cell_type == "code" for output in cell.outputs)


def fresh_clone(folder):
    """The lesson, its modules and the sample in a folder of their own, as a fresh clone has them:
    no data/, no outputs/, no runs/."""
    for name in LESSON_FILES:
        shutil.copy2(REPO / name, folder / name)
    shutil.copytree(REPO / "mnistlab_tools", folder / "mnistlab_tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "sample", folder / "sample")
    return folder / "mnistlab.py"


def offline(environment):
    """No network, as behind a firewall: a proxy on a closed local port fails every download."""
    closed = "http://127.0.0.1:9"
    return {
        **environment,
        "http_proxy": closed,
        "https_proxy": closed,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": "",
        "NO_PROXY": "",
    }


def lesson_parameters(notebook=NOTEBOOK):
    """The values of a lesson's parameters cell, as papermill reads them, without running it; of
    a lesson with no notebook (ddp.py), as Python reads its cell."""
    if notebook.suffix == ".py":
        (cell,) = [cell for cell in jupytext.read(notebook).cells
                   if "parameters" in cell.metadata.get("tags", [])]
        return {node.targets[0].id: ast.literal_eval(node.value)
                for node in ast.parse(cell.source).body}
    return {
        name: ast.literal_eval(parameter["default"])
        for name, parameter in papermill.inspect_notebook(str(notebook)).items()
    }


def training_run(out_dir, images=2000, *options, epochs=2, network=saved.DigitNet):
    """The training of a Run with the lesson's settings on the sample for `epochs`, saving into
    out_dir, around a fresh network and blank images, as `with training_run(…) as run:`: for
    tests that drive its epochs by hand."""
    return run_and_training(out_dir, images, *options, epochs=epochs, network=network)[1]


def run_and_training(out_dir, images=2000, *options, epochs=2, network=saved.DigitNet):
    """(run, training): training_run's Run, and its training, for a test that looks at the run
    after a training that never started."""
    settings = tools.read_settings(lesson_parameters(), ["--sample", "--epochs", str(epochs),
                                                         "--out-dir", str(out_dir), *options], {})
    torch.manual_seed(0)
    model, pictures = network(settings.channels), torch.zeros(images, 1, 28, 28)
    steps_per_epoch = saved.steps_in_an_epoch(pictures, settings.batch_size)
    optimizer, scheduler = saved.one_cycle_adam(model, settings.lr, epochs * steps_per_epoch)
    run = tools.Run(settings)
    return run, run.training(model, optimizer, scheduler, pictures, steps_per_epoch)


class Kernel:
    """A fresh Jupyter kernel in the repository folder, fed code the way VS Code's Interactive
    Window feeds it."""

    def __init__(self, environment, cwd=REPO):
        self.environment, self.cwd = environment, cwd

    def __enter__(self):
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", cwd=str(self.cwd), env=self.environment
        )
        return self

    def run(self, source, timeout=240):
        """Run one cell: its reply status and the contents of its output messages."""
        outputs = []
        reply = self.client.execute_interactive(
            source, timeout=timeout, output_hook=lambda message: outputs.append(message["content"])
        )
        return reply["content"]["status"], outputs

    def __exit__(self, *_):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def hook(name):
    """A code generator of .hooks/ (export, parameters), loaded as the pre-commit hook runs it."""
    spec = importlib.util.spec_from_file_location(name, REPO / ".hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_cells(script=SCRIPT):
    """The sources of the lesson's code cells, in order, as the Interactive Window sends them."""
    return [cell.source for cell in jupytext.read(script).cells if cell.cell_type == "code"]


def tagged(tag, script=SCRIPT):
    """The positions, among code_cells, of the cells tagged `tag`: what a cell does, as the
    lesson marks it (parameters, setup, device, training, confusion, save, exercise)."""
    cells = [cell for cell in jupytext.read(script).cells if cell.cell_type == "code"]
    return [i for i, cell in enumerate(cells) if tag in cell.metadata.get("tags", [])]


def cell_index(tag, script=SCRIPT):
    """The position of the first code cell tagged `tag`."""
    return tagged(tag, script)[0]


def figures_of_every_cell(environment):
    """Run every code cell of the lesson in order in one fresh kernel, as the Interactive Window
    sends them, each without an error; the number of figures they showed."""
    shown = 0
    with Kernel(environment) as kernel:
        for source in code_cells():
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            shown += images_in(outputs)
    return shown


