"""The repository keeps its promises: the notebook matches the script, the two environments agree, CI runs the README."""
import re

import jupytext
import yaml

from conftest import NOTEBOOK, REPO, SCRIPT


def test_the_notebook_holds_the_same_cells_as_the_script():
    script, notebook = jupytext.read(SCRIPT), jupytext.read(NOTEBOOK)
    assert [(c.cell_type, c.source.strip()) for c in notebook.cells] == \
           [(c.cell_type, c.source.strip()) for c in script.cells], "run: jupytext --sync mnistlab.py"
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert 'formats = "ipynb,py:percent"' in (REPO / "jupytext.toml").read_text()


def requirement(line):
    name, bound = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line.strip()).groups()
    return name.lower(), bound.replace(" ", "")


def test_requirements_and_environment_name_the_same_packages():
    pip = dict(requirement(line) for line in (REPO / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#"))
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert environment["name"] == "mnistlab"
    conda = dict(requirement(entry) for entry in environment["dependencies"] if isinstance(entry, str))
    conda.pop("python")
    conda["torch"] = conda.pop("pytorch")  # conda-forge calls PyTorch "pytorch"
    assert conda == pip
    assert {"torch", "torchvision", "matplotlib", "pandas", "seaborn", "scikit-learn", "jupytext", "ipykernel",
            "pytest", "nbclient"} <= set(pip)


def quick_start():
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start.*?```(?:bash|sh)?\n(.*?)```", text, re.S)
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_quick_start_is_two_commands_and_ci_runs_its_test_command():
    install_and_run, test = quick_start()
    assert "requirements.txt" in install_and_run and "mnistlab.py" in install_and_run
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test
    assert "pytest" in test
