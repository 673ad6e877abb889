"""Shared helpers: where the lesson is, and how to run it as a user would: terminal or kernel."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import papermill
from jupyter_client.manager import start_new_kernel

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "mnistlab.py"
NOTEBOOK = REPO / "mnistlab.ipynb"
# What a fresh clone holds for the lesson to run: the lesson, its modules, and the sample.
LESSON_FILES = ["mnistlab.py", "mnistlab_tools.py", "mnistlab_saved.py", "predict.py"]
FIGURES = [
    "sample_digits",
    "learning_curve",
    "confusion_matrix",
    "misclassified_digits",
    "your_digits",
]
RESULT = re.compile(
    r"^Result: (?P<seconds>[\d.]+) s of training on \w+, "
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


def fresh_clone(folder):
    """The lesson, its modules and the sample in a folder of their own, as a fresh clone has them:
    no data/, no outputs/, no runs/."""
    for name in LESSON_FILES:
        shutil.copy2(REPO / name, folder / name)
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


def lesson_parameters():
    """The values of the lesson's parameters cell, as papermill reads them, without running it."""
    return {
        name: ast.literal_eval(parameter["default"])
        for name, parameter in papermill.inspect_notebook(str(NOTEBOOK)).items()
    }


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


def code_cells():
    return [cell.source for cell in jupytext.read(SCRIPT).cells if cell.cell_type == "code"]


def cell_index(phrase, cells=None):
    """The position of the first code cell that holds `phrase`."""
    return next(i for i, source in enumerate(cells or code_cells()) if phrase in source)


def figures_drawn(source):
    return len(re.findall(r"^\s*figures\.show\(", source, re.M))


def images_in(outputs):
    return sum("image/png" in output.get("data", {}) for output in outputs)


def printed(outputs):
    return "".join(output.get("text", "") for output in outputs)


def on_stderr(outputs):
    return "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")


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
