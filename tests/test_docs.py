"""The two pages tell the truth: what they link exists, what they tell you to run runs, and the
settings are real."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import jupytext
import nbformat
import pytest
import yaml
from lesson_runs import (
    FIGURES,
    HANDWRITING_FIGURES,
    NOTEBOOK,
    PAIRS,
    REPO,
    RESULT,
    lesson_environment,
)
from run_outputs import images_in, widgets_in

from mnistlab_tools.settings import SETTINGS

PAGES = ["README.md", "Readme_jupyter.md", "CONTRIBUTING.md", "sample/README.md",
         *sorted(str(page.relative_to(REPO)) for page in (REPO / "docs").glob("*.md"))]


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
            other = (REPO / page).parent / path
            assert other.exists(), f"{page} links to {path}, which is not in the repository"
            if anchor and other.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", other.read_text(), re.M)
                assert anchor in {slug(heading) for heading in headings}, (
                    f"{page} links to {target}, which is no heading of {path}")
        elif anchor:
            assert anchor in anchors, f"{page} links to #{anchor}, which is no heading of it"


def test_the_contents_list_the_readmes_sections_as_they_are_headed():
    text = text_of("README.md")
    contents = text[text.index("## Contents\n"):text.index("\n## ", text.index("## Contents") + 1)]
    listed = re.findall(r"^- \[(.+?)\]\(#(.+?)\)", contents, re.M)
    headings = re.findall(r"^## (.+)$", text[text.index("## Contents\n") + 1:], re.M)
    assert listed == [(heading, slug(heading)) for heading in headings]


def test_the_pages_show_the_figures_of_a_full_mnist_run():
    text = text_of("README.md") + text_of("docs/results.md") + text_of("docs/beyond.md")
    for name in [*FIGURES, *HANDWRITING_FIGURES]:
        assert f"figures/{name}.png)" in text
        assert (REPO / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    captions = re.findall(r"!\[([^\]]*)\]\((?:\.\./)?figures/", text)
    assert all("full MNIST" in caption for caption in captions), captions


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
    assert finished.returncode == 0 and "--device NAME" in finished.stdout


def test_the_gpu_check_runs():
    command = next(
        line for line in commands_in("Readme_jupyter.md") if "torch.cuda.is_available()" in line
    )
    finished = run_shell(command, REPO)
    assert finished.returncode == 0, finished.stderr
    torch = __import__("torch")
    # What the page's bullets are read against: the version, the CUDA build, whether it sees a GPU.
    assert finished.stdout.split() == [torch.__version__, str(torch.version.cuda),
                                       str(torch.cuda.is_available())]


def outputs_in(notebook_path):
    notebook = nbformat.read(notebook_path, as_version=4)
    return sum(len(cell.get("outputs", [])) for cell in notebook.cells)


def test_the_sync_commands_take_the_file_you_edited_as_the_source(tmp_path):
    to_notebook = ".venv/bin/jupytext --update --to ipynb mnistlab.py"
    to_script = ".venv/bin/jupytext --to py:percent mnistlab.ipynb"
    assert {to_notebook, to_script} <= set(commands_in("CONTRIBUTING.md"))
    for name in ("mnistlab.py", "mnistlab.ipynb", "pyproject.toml"):
        shutil.copy2(REPO / name, tmp_path / name)
    script, notebook = tmp_path / "mnistlab.py", tmp_path / "mnistlab.ipynb"
    script.write_text(script.read_text().replace("# ## The network\n", "# ## The network, A\n"))
    notebook.touch()  # a stale notebook saved after the edit: its time must not matter
    assert run_shell(to_notebook, tmp_path).returncode == 0
    assert "## The network, A" in notebook.read_text()
    assert outputs_in(notebook) == outputs_in(NOTEBOOK)  # the stored outputs are kept
    notebook.write_text(notebook.read_text().replace("The network, A", "The network, B"))
    script.touch()
    assert run_shell(to_script, tmp_path).returncode == 0
    assert "# ## The network, B\n" in script.read_text()


def git(*arguments, cwd, **options):
    return subprocess.run(["git", "-c", "user.name=Learner", "-c", "user.email=learner@example.org",
                           *arguments], cwd=cwd, capture_output=True, text=True, **options)


def edited_notebook(notebook, old, new):
    """The notebook with `old` replaced by `new` in its cells, saved as Jupyter saves it."""
    content = nbformat.read(notebook, as_version=4)
    for cell in content.cells:
        cell.source = cell.source.replace(old, new)
    nbformat.write(content, notebook)


def commit_at_the_first_try(edited, folder, environment):
    assert git("add", edited, cwd=folder).returncode == 0
    committed = git("commit", "-qm", f"edit {edited}", cwd=folder, env=environment)
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert git("status", "--porcelain", cwd=folder).stdout == ""  # nothing left to add


def test_one_commit_takes_an_edit_of_either_file_with_its_pair_and_the_saved_module(tmp_path):
    """Edit the script, then VS Code saves the notebook as it was: the hook takes the staged
    script as the source, not the newer notebook. Then edit the notebook alone. Each commit goes
    through at the first try, without any environment on PATH, as VS Code's Source Control view
    commits, and takes the pair and mnistlab_saved.py in step."""
    pre_commit = shutil.which("pre-commit", path=f"{sys.prefix}/bin")
    if not pre_commit:
        pytest.skip("needs pre-commit, from tests/requirements.txt")
    for name in ["mnistlab.py", "mnistlab.ipynb", "handwriting.py", "handwriting.ipynb",
                 "pyproject.toml", "mnistlab_saved.py", ".pre-commit-config.yaml"]:
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "mnistlab_tools", tmp_path / "mnistlab_tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / ".hooks", tmp_path / ".hooks")
    (tmp_path / ".venv").symlink_to(sys.prefix)  # the quick start's .venv, ignored by git
    (tmp_path / ".gitignore").write_text(".venv\npre-commit-cache/\n")
    # As VS Code's Source Control view commits: no environment active, nothing of it on PATH.
    environment = {**os.environ, "PATH": "/usr/bin:/bin", "CONDA_PREFIX": "",
                   "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the lesson"]):
        assert git(*step, cwd=tmp_path).returncode == 0
    installed = subprocess.run([pre_commit, "install"], cwd=tmp_path, env=environment,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr

    script, notebook = tmp_path / "mnistlab.py", tmp_path / "mnistlab.ipynb"
    stale = notebook.read_bytes()
    script.write_text(script.read_text().replace("# ## The learning curve\n",
                                                 "# ## The curve, edited\n"))
    notebook.write_bytes(stale)  # saved later, so newer than the script
    commit_at_the_first_try("mnistlab.py", tmp_path, environment)
    edited_notebook(notebook, "split.data.float() / 255\n",
                    "split.data.float() / 255  # from the notebook\n")
    commit_at_the_first_try("mnistlab.ipynb", tmp_path, environment)
    for name in ("mnistlab.py", "mnistlab.ipynb", "mnistlab_saved.py"):
        committed = git("show", f"HEAD:{name}", cwd=tmp_path).stdout
        assert "/ 255  # from the notebook" in committed, name
        assert name == "mnistlab_saved.py" or "## The curve, edited" in committed, name
    assert outputs_in(notebook) == outputs_in(NOTEBOOK)
    # Lesson two's pair goes the same way, into the same saved module.
    two = tmp_path / "handwriting.py"
    two.write_text(two.read_text().replace('"""The digit cropped to its ink."""',
                                           '"""The digit cropped to its ink, edited."""'))
    commit_at_the_first_try("handwriting.py", tmp_path, environment)
    for name in ("handwriting.py", "handwriting.ipynb", "mnistlab_saved.py"):
        assert "cropped to its ink, edited" in git("show", f"HEAD:{name}", cwd=tmp_path).stdout


def test_regenerating_the_figures_without_mnist_says_what_to_do(tmp_path):
    shutil.copytree(REPO / "figures", tmp_path / "figures")
    finished = run_shell("bash figures/regenerate.sh", tmp_path)
    assert (
        finished.returncode == 2
        and "data/MNIST/raw/" in finished.stderr
        and "Traceback" not in finished.stderr
    )
    assert "bash figures/regenerate.sh" in commands_in("CONTRIBUTING.md")


@pytest.mark.parametrize("lesson", PAIRS)
def test_the_committed_notebook_holds_a_full_mnist_run_of_its_cells_as_they_stand(lesson):
    script, notebook_path = PAIRS[lesson]
    figures = {"mnistlab": FIGURES, "handwriting": HANDWRITING_FIGURES}[lesson]
    notebook = nbformat.read(notebook_path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        "run figures/regenerate.sh"
    )
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    printed = "".join(output.get("text", "") for cell in code for output in cell.outputs)
    result = RESULT.search(printed)
    assert result and "on 10,000 MNIST test digits" in printed and float(result["accuracy"]) > 98.5
    assert images_in([output for cell in code for output in cell.outputs]) == len(figures)
    # and the drawing pad, with its picture of what it answers, for GitHub's readers
    assert widgets_in([output for cell in code for output in cell.outputs]) == 1
    script_code = "\n".join(c.source for c in jupytext.read(script).cells if c.cell_type == "code")
    assert (
        notebook.metadata["mnistlab"]["outputs_of_code_sha256"]
        == hashlib.sha256(script_code.encode()).hexdigest()
    ), "the outputs are of older code: run figures/regenerate.sh"


def json_with_comments(path):
    return json.loads(re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M))


def test_vscode_uses_the_venv_and_the_env_file_the_readme_shows():
    settings = json_with_comments(REPO / ".vscode" / "settings.json")
    assert settings["python.defaultInterpreterPath"] == "${workspaceFolder}/.venv/bin/python"
    assert settings["python.envFile"] == "${workspaceFolder}/.env"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0, ".env must stay out of git"
    example = (REPO / ".env.example").read_text()
    names = re.findall(r"^#? ?(MNISTLAB_\w+)=", example, re.M)
    known = {setting.variable for setting in SETTINGS}
    assert names and set(names) <= known
    assert "cp .env.example .env" in text_of("docs/settings.md")


def test_vscode_recommends_the_extensions_the_readme_names():
    recommended = json_with_comments(REPO / ".vscode" / "extensions.json")["recommendations"]
    pages = "".join(text_of(page) for page in PAGES)
    assert recommended and all(f"`{extension}`" in pages for extension in recommended)


def test_the_pre_commit_hook_syncs_the_pair_from_the_staged_file():
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    (sync,) = hooks
    assert sync["entry"].split() == [".hooks/lesson-python", ".hooks/lesson_in_step.py"]
    assert re.search(sync["files"], "mnistlab.py") and re.search(sync["files"], "mnistlab.ipynb")
    assert ".pre-commit-config.yaml" in text_of("CONTRIBUTING.md")


# The classes of statements that went stale, kept fixed.

def headings_of(page):
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text_of(page), re.M)}


@pytest.mark.parametrize("page", ["docs/troubleshooting.md", "docs/shared-server.md"])
def test_every_entry_of_a_problem_page_is_a_heading_others_can_link_to(page):
    lead_ins = re.findall(r"(?:^|\n\n)(\*\*[^*\n]+\*\*)", text_of(page))  # a paragraph's
    assert lead_ins == [], f"{page}: make these headings: {lead_ins}"


def pointers_in_code():
    """Each page (with its anchor, if any) that the lesson's messages and comments point to."""
    sources = [*(REPO / "mnistlab_tools").glob("*.py"), REPO / "mnistlab.py",
               REPO / "handwriting.py", REPO / "predict.py", *(REPO / "slurm").glob("*.py")]
    pages = "|".join(re.escape(page) for page in PAGES)
    return {(source.name, found) for source in sources
            for found in re.findall(rf"(?<![\w/])((?:{pages})(?:#[\w-]+)?)",
                                    source.read_text())}


def test_every_page_the_messages_point_to_has_the_heading_they_name():
    pointers = pointers_in_code()
    assert ("data.py", "docs/troubleshooting.md#the-mnist-download-fails") in pointers
    for source, pointer in pointers:
        page, _, anchor = pointer.partition("#")
        assert not anchor or anchor in headings_of(page), f"{source} points to {pointer}"
    for source in [*(REPO / "mnistlab_tools").glob("*.py"), REPO / "predict.py"]:
        named = re.findall(r"(\w+\.md), ([A-Z][\w ]+)\b", source.read_text())
        assert named == [], f"{source.name} names sections as text, not as links: {named}"


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_page_names_is_in_the_repository(page):
    folders = "tests|benchmarks|slurm|figures|sample|docs|mnistlab_tools|\\.vscode|\\.hooks"
    for path in re.findall(rf"`((?:{folders})/[\w./-]*\w)`", text_of(page)):
        assert (REPO / path).exists(), f"{page} names {path}, which is not in the repository"


LESSON_SCRIPTS = r"(?:mnistlab|handwriting|predict)\.py"


@pytest.mark.parametrize("page", PAGES)
def test_a_lesson_command_is_written_one_way_everywhere(page):
    """.venv/bin/python, as the quick start makes it; only the doctor, which needs nothing
    installed, runs in the server's own python3 first."""
    bare = [line for line in re.findall(rf"(?<![\w/.])python3? {LESSON_SCRIPTS}[^`\n]*",
                                        text_of(page))
            if line != "python3 mnistlab.py --doctor"]
    assert bare == [], f"{page} writes a lesson command without .venv/bin/: {bare}"


def test_the_messages_write_a_lesson_command_as_the_pages_do():
    sources = [*(REPO / "mnistlab_tools").glob("*.py"), REPO / "predict.py",
               REPO / "handwriting.py"]
    for source in sources:
        messages = "\n".join(re.findall(r'f?"[^"\n]*"', source.read_text()))
        bare = re.findall(rf"(?<![\w/.{{}}])python {LESSON_SCRIPTS}", messages)
        assert bare == [], f"{source.name} tells the learner to run {bare}"


def test_the_readme_is_a_short_path():
    readme = text_of("README.md")
    quick_start = readme[readme.index("## Quick start"):readme.index("## Contents")]
    first_command = re.findall(r"```bash\n(.*?)\n```", quick_start, re.S)[1]
    assert first_command == "python3 mnistlab.py --doctor"
    assert "jupytext" in quick_start
    stored = {line for line in re.findall(r"Result: [^\"\\]+", (REPO / "mnistlab.ipynb")
                                          .read_text()) if "{" not in line}
    (shown,) = re.findall(r"`(Result: [^`]+)`", quick_start)
    assert shown in stored, "the Result: line shown is the stored run's"


@pytest.mark.parametrize("marker, home", [
    ("pip cache purge", "docs/troubleshooting.md"),  # install sizes and where the space goes
    ("download.pytorch.org/whl/cu", "docs/troubleshooting.md"),  # the build for the driver
    ("compute_cap", "docs/troubleshooting.md"),  # the build for the GPU
    ("jupyter.jupyterLaunchTimeout", "docs/cluster.md"),
    ("python.useEnvironmentsExtension", "docs/troubleshooting.md"),
])
def test_each_topic_is_explained_in_one_page_and_linked_from_the_others(marker, home):
    assert [page for page in PAGES if marker in text_of(page)] == [home]


def stored_results():
    """The Result: lines of the runs the notebooks hold."""
    return {line for notebook in PAIRS.values() for line in
            re.findall(r"Result: [^\"\\]+", notebook[1].read_text()) if "{" not in line}


def test_the_speed_pages_numbers_are_those_a_benchmark_wrote():
    """Every row of speed.md's table, and every measured number of speed.md and settings.md, is
    in the table benchmarks/benchmark.py --record wrote, or in the notebooks' stored runs."""
    record = (REPO / "benchmarks" / "results" / "cpu.md").read_text()
    speed = text_of("docs/speed.md")
    rows = [line for line in speed.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 4 and all(row in record for row in rows)
    sources = record + "\n".join(stored_results())
    for page in ("docs/speed.md", "docs/settings.md", "README.md"):
        measured = re.findall(r"\b\d+\.\d+(?= ?(?:s|%|MB)\b)", text_of(page))
        unsourced = [number for number in measured if number not in sources]
        assert unsourced == [], f"{page} quotes numbers no benchmark wrote: {unsourced}"


def recorded_rows(name):
    """{first cell: the rest} of each row of the table benchmarks/results/NAME.md holds."""
    text = (REPO / "benchmarks" / "results" / f"{name}.md").read_text()
    return dict(re.findall(r"^\| (.+?) \| (.+) \|$", text, re.M))


def test_the_handwriting_pages_tables_are_those_the_benchmarks_wrote():
    """beyond.md's columns, row by row, are the tables that handwriting.py and other_writers.py
    --record wrote, and so is the lesson-one figure its prose quotes."""
    page = text_of("docs/beyond.md")
    one, two = recorded_rows("handwriting-lesson-one"), recorded_rows("handwriting")
    rows = re.findall(r"^\| (.+?) \| (\d+\.\d+) \| (\d+\.\d+) \|$", page, re.M)
    assert [name.replace("`", "") for name, *_ in rows] == [
        name for name in two if re.fullmatch(r"\d+\.\d+", two[name])]
    for name, lesson_one, lesson_two in rows:
        assert (lesson_one, lesson_two) == (one[name.replace("`", "")],
                                            two[name.replace("`", "")]), name
    writers = recorded_rows("other_writers")
    digits = re.findall(r"^\| (\d|all) \| (.+) \|$", page, re.M)
    assert [digit for digit, _ in digits] == [*"0123456789", "all"]
    assert all(writers[digit] == cells for digit, cells in digits)
    without = re.findall(r"\d+\.\d+(?= \()", recorded_rows("other_writers-lesson-one")["all"])
    assert f"{', '.join(without[:-1])} and {without[-1]} %" in " ".join(page.split())

