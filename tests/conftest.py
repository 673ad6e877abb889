"""Shared helpers: where the lesson is, how to run it as a user would, and how to reach its functions."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lesson_parts import load_lesson_parts

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "mnistlab.py"
NOTEBOOK = REPO / "mnistlab.ipynb"
FIGURES = ["sample_digits", "learning_curve", "confusion_matrix", "misclassified_digits"]
RESULT = re.compile(r"^Result: (?P<seconds>[\d.]+) s of training on \w+, test accuracy (?P<accuracy>[\d.]+) %", re.M)


def lesson_environment(out_dir, **settings):
    """The user's environment with no display, no stray MNISTLAB_* settings, and the given ones."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("MNISTLAB_") and name not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    environment["MNISTLAB_OUT_DIR"] = str(out_dir)
    environment.update({f"MNISTLAB_{name.upper()}": str(value) for name, value in settings.items()})
    return environment


def run_lesson(*options, cwd, environment, timeout=300):
    """`python mnistlab.py OPTIONS` in a terminal, started from `cwd`."""
    return subprocess.run([sys.executable, str(SCRIPT), *options], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def lesson():
    """The lesson's imports, constants, functions and classes, without running the lesson itself."""
    return load_lesson_parts()
