"""The repository keeps its promises: the notebook matches the script, the two environments agree,
CI runs the README, the code is clean, and the lesson stays a lesson."""

import re
import subprocess
import sys
import tomllib

import jupytext
import nbformat
import pytest
import yaml
from lesson_runs import PAIRS, REPO, lesson_parameters

from mnistlab_tools.doctor import install_command
from mnistlab_tools.settings import LESSONS


@pytest.mark.parametrize("lesson", PAIRS)
def test_the_notebook_holds_the_same_cells_as_the_script(lesson):
    script, notebook = (jupytext.read(path) for path in PAIRS[lesson])
    assert [(c.cell_type, c.source.strip()) for c in notebook.cells] == [
        (c.cell_type, c.source.strip()) for c in script.cells
    ], f"run: jupytext --sync {PAIRS[lesson][0].name}"
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    configuration = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert configuration["tool"]["jupytext"]["formats"] == "ipynb,py:percent"


def requirement(line):
    name, bound = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line.strip()).groups()
    return name.lower(), bound.replace(" ", "")


def test_requirements_and_environment_name_the_same_packages():
    pip = dict(
        requirement(line)
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert environment["name"] == "mnistlab"
    conda = dict(
        requirement(entry) for entry in environment["dependencies"] if isinstance(entry, str)
    )
    conda.pop("python")
    conda["torch"] = conda.pop("pytorch")  # conda-forge calls PyTorch "pytorch"
    assert conda == pip
    assert {
        "torch",
        "torchvision",
        "matplotlib",
        "pandas",
        "seaborn",
        "scikit-learn",
        "jupytext",
        "ipykernel",
        "papermill",
    } <= set(pip)


RUN = ".venv/bin/python mnistlab.py"


def quick_start():
    """The quick start's code blocks, a line each: the clone, the install for each kind of
    server, and the test command."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Quick start"):text.index("## Contents")]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_the_readme_quick_start_is_two_commands_and_ci_runs_its_test_command():
    clone, doctor, with_gpu, cpu_only, test = quick_start()
    assert clone.startswith("git clone ") and clone.endswith("&& cd ~/mnistlab")
    assert doctor == "python3 mnistlab.py --doctor"  # which of the two installs, before either
    # The two installs are the doctor's own commands for those servers, then the lesson.
    assert with_gpu == install_command("13.0", replacing=False) + " && " + RUN
    assert cpu_only == install_command(None, replacing=False) + " && " + RUN
    for install_and_run in (with_gpu, cpu_only):
        assert "\n" not in install_and_run and install_and_run.startswith("python3 -m venv .venv")
        assert "-r requirements.txt" in install_and_run
        assert install_and_run.endswith(".venv/bin/python mnistlab.py")
    assert "--index-url https://download.pytorch.org/whl/cpu" in cpu_only
    assert "download.pytorch.org" not in with_gpu
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test and "-r tests/requirements.txt" in test and "pytest" in test
    assert ".venv/bin/pip install --quiet -r requirements.txt" in ci  # the install with a GPU


def test_ruff_finds_nothing_in_any_python_file():
    # The rules are pyproject.toml's, so that `ruff check .` alone does the same.
    finished = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr


@pytest.mark.parametrize("lesson", PAIRS)
def test_the_parameters_cell_is_tagged_for_papermill_and_holds_plain_values(lesson):
    notebook = nbformat.read(PAIRS[lesson][1], as_version=4)
    (cell,) = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert [line.split("=")[0].strip() for line in cell.source.splitlines()] == list(
        LESSONS[lesson].settings)
    assert lesson_parameters(PAIRS[lesson][1])["epochs"] == {"mnistlab": 1, "handwriting": 5}[
        lesson]  # lesson one is quick; lesson two's other hands take longer to learn

