"""Shared helpers: where the lesson is, how to run it as a user would, and how to reach its functions."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from jupyter_client.manager import start_new_kernel

from lesson_parts import load_lesson_parts

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "mnistlab.py"
NOTEBOOK = REPO / "mnistlab.ipynb"
FIGURES = ["sample_digits", "learning_curve", "confusion_matrix", "misclassified_digits", "your_digits"]
RESULT = re.compile(r"^Result: (?P<seconds>[\d.]+) s of training on \w+, test accuracy (?P<accuracy>[\d.]+) %", re.M)


def lesson_environment(out_dir, **settings):
    """The user's environment with no display, no stray MNISTLAB_* settings, and the given ones."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("MNISTLAB_") and name not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    environment["MNISTLAB_OUT_DIR"] = str(out_dir)
    environment.update({f"MNISTLAB_{name.upper()}": str(value) for name, value in settings.items()})
    return environment


def run_lesson(*options, cwd, environment, script=SCRIPT, timeout=300):
    """`python mnistlab.py OPTIONS` in a terminal, started from `cwd`."""
    return subprocess.run([sys.executable, str(script), *options], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def fresh_clone(folder):
    """The lesson and its sample in a folder of their own, as a fresh clone has them: no data/, no outputs/."""
    shutil.copy2(SCRIPT, folder / "mnistlab.py")
    shutil.copytree(REPO / "sample", folder / "sample")
    return folder / "mnistlab.py"


def offline(environment):
    """No network, as behind a firewall: a proxy on a closed local port makes every download fail at once."""
    closed = "http://127.0.0.1:9"
    return {**environment, "http_proxy": closed, "https_proxy": closed, "HTTP_PROXY": closed, "HTTPS_PROXY": closed,
            "no_proxy": "", "NO_PROXY": ""}


@pytest.fixture(scope="session")
def lesson():
    """The lesson's imports, constants, functions and classes, without running the lesson itself."""
    return load_lesson_parts()


class Kernel:
    """A fresh Jupyter kernel in the repository folder, fed code the way VS Code's Interactive Window feeds it."""

    def __init__(self, environment):
        self.environment = environment

    def __enter__(self):
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(REPO), env=self.environment)
        return self

    def run(self, source, timeout=240):
        """Run one cell: its reply status and the contents of its output messages."""
        outputs = []
        reply = self.client.execute_interactive(source, timeout=timeout,
                                                output_hook=lambda message: outputs.append(message["content"]))
        return reply["content"]["status"], outputs

    def __exit__(self, *_):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def code_cells():
    return [cell.source for cell in jupytext.read(SCRIPT).cells if cell.cell_type == "code"]


def figures_drawn(source):
    return len(re.findall(r"^\s*show\(figure", source, re.M))


def images_in(outputs):
    return sum("image/png" in output.get("data", {}) for output in outputs)


def printed(outputs):
    return "".join(output.get("text", "") for output in outputs)
