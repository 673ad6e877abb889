"""The two pages tell the truth: what they link exists, what they tell you to run runs, and the
settings are real."""

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys

import jupytext
import nbformat
import pytest
import yaml

import mnistlab_tools
from conftest import FIGURES, NOTEBOOK, REPO, RESULT, SCRIPT, lesson_environment, lesson_parameters

PAGES = ["README.md", "Readme_jupyter.md"]


def text_of(page):
    return (REPO / page).read_text()


def slug(heading):
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES)
def test_every_link_and_image_inside_the_repository_exists(page):
    text = text_of(page)
    anchors = {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, re.M)}
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    for target in targets:
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (REPO / path).exists(), f"{page} links to {path}, which is not in the repository"
        elif anchor:
            assert anchor in anchors, f"{page} links to #{anchor}, which is no heading of it"


def test_the_readme_shows_the_figures_of_a_full_mnist_run():
    text = text_of("README.md")
    for name in FIGURES:
        assert f"](figures/{name}.png)" in text
        assert (REPO / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    captions = re.findall(r"!\[([^\]]*)\]\(figures/", text)
    assert all("full MNIST" in caption for caption in captions), captions


def test_the_settings_table_lists_exactly_the_lessons_settings():
    rows = re.findall(r"^\| `(\w+) = ([^`]+)` \| `(--[\w-]+)[^`]*` \| `(MNISTLAB_\w+)[^`]*` \|",
                      text_of("README.md"), re.M)
    assert [name for name, *_ in rows] == [name for name, *_ in mnistlab_tools.SETTINGS]
    cell = lesson_parameters()
    for (name, value, option, variable), (_, real_option, *_) in zip(
        rows, mnistlab_tools.SETTINGS, strict=True
    ):
        assert ast.literal_eval(value) == cell[name], name
        assert option == real_option.split()[0]
        assert variable == mnistlab_tools.environment_name(option)


def commands_in(page):
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text_of(page), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def run_shell(command, cwd, **environment):
    """A documented command as a learner types it, .venv/bin/ standing for this test's Python."""
    bin_dir = (
        str(REPO / ".venv" / "bin")
        if (REPO / ".venv" / "bin" / "python").exists()
        else str(sys.prefix + "/bin")
    )
    command = command.replace(".venv/bin/", bin_dir + "/")
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**lesson_environment(cwd / "outputs"), **environment},
    )


def test_help_works_as_documented(tmp_path):
    command = ".venv/bin/python mnistlab.py --help"
    assert any(command in line for page in PAGES for line in commands_in(page) + [text_of(page)])
    finished = run_shell(f"cd {REPO} && {command}", tmp_path)
    assert finished.returncode == 0 and "--device {auto,cuda,mps,cpu}" in finished.stdout


def test_the_gpu_check_runs():
    command = next(
        line for line in commands_in("Readme_jupyter.md") if "torch.cuda.is_available()" in line
    )
    finished = run_shell(command, REPO)
    assert finished.returncode == 0, finished.stderr
    version, cuda, available = finished.stdout.split()
    assert version == __import__("torch").__version__ and available in ("True", "False")


def test_jupytext_sync_brings_an_edit_of_the_script_into_the_notebook(tmp_path):
    command = ".venv/bin/jupytext --sync mnistlab.py"
    assert command in commands_in("README.md")
    for name in ("mnistlab.py", "mnistlab.ipynb", "jupytext.toml"):
        shutil.copy2(REPO / name, tmp_path / name)
    script = tmp_path / "mnistlab.py"
    script.write_text(
        script.read_text().replace("# ## The network\n", "# ## The network, edited\n")
    )
    finished = run_shell(command, tmp_path)
    assert finished.returncode == 0, finished.stderr
    notebook = nbformat.read(tmp_path / "mnistlab.ipynb", as_version=4)
    assert any("## The network, edited" in cell.source for cell in notebook.cells)
    assert sum(len(cell.get("outputs", [])) for cell in notebook.cells) == sum(
        len(cell.get("outputs", [])) for cell in nbformat.read(NOTEBOOK, as_version=4).cells
    )


def test_regenerating_the_figures_without_mnist_says_what_to_do(tmp_path):
    shutil.copytree(REPO / "figures", tmp_path / "figures")
    finished = run_shell("bash figures/regenerate.sh", tmp_path)
    assert (
        finished.returncode == 2
        and "data/MNIST/raw/" in finished.stderr
        and "Traceback" not in finished.stderr
    )
    assert "bash figures/regenerate.sh" in commands_in("README.md")


def test_the_committed_notebook_holds_a_full_mnist_run_of_its_cells_as_they_stand():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        "run figures/regenerate.sh"
    )
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    printed = "".join(output.get("text", "") for cell in code for output in cell.outputs)
    result = RESULT.search(printed)
    assert result and "on 10,000 MNIST test digits" in printed and float(result["accuracy"]) > 98.5
    assert sum(
        "image/png" in output.get("data", {}) for cell in code for output in cell.outputs
    ) == len(FIGURES)
    script_code = "\n".join(c.source for c in jupytext.read(SCRIPT).cells if c.cell_type == "code")
    assert (
        notebook.metadata["mnistlab"]["outputs_of_code_sha256"]
        == hashlib.sha256(script_code.encode()).hexdigest()
    ), "the outputs are of older code: run figures/regenerate.sh"


def test_vscode_recommends_the_extensions_the_readme_names():
    text = (REPO / ".vscode" / "extensions.json").read_text()
    recommended = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))["recommendations"]
    readme = text_of("README.md")
    assert recommended and all(f"`{extension}`" in readme for extension in recommended)


def test_the_pre_commit_hook_syncs_the_pair():
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    sync = next(hook for hook in hooks if hook["entry"].startswith("jupytext --sync"))
    assert re.search(sync["files"], "mnistlab.py") and re.search(sync["files"], "mnistlab.ipynb")
    assert ".pre-commit-config.yaml" in text_of("README.md")
