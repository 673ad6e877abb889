"""The pre-commit hook (.pre-commit-config.yaml): brings each lesson's script and notebook
(mnistlab.py and mnistlab.ipynb, handwriting.py and handwriting.ipynb) in step from the one you
staged, writes mnistlab_saved.py again from the scripts' #@save cells, and stages what it
changed, so that one commit takes them all.

The staged file is the source, whatever the files' times say: VS Code saves an open notebook
whenever it likes, so a stale notebook can be the newer file. pre-commit has put aside what you
did not stage, so the files here are what you staged."""

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PAIRS = [("mnistlab.py", "mnistlab.ipynb"), ("handwriting.py", "handwriting.ipynb")]


def run(*command):
    finished = subprocess.run(command, cwd=REPOSITORY)
    if finished.returncode:
        sys.exit(finished.returncode)


def main():
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=REPOSITORY,
                            capture_output=True, text=True, check=True).stdout.split()
    jupytext = [sys.executable, "-m", "jupytext", "--quiet"]
    for script, notebook in PAIRS:
        if script not in staged and notebook not in staged:
            continue
        if notebook not in staged:  # the script is the source; the outputs are kept
            run(*jupytext, "--update", "--to", "ipynb", script)
        elif script not in staged:
            run(*jupytext, "--to", "py:percent", notebook)
        else:  # both staged: they must agree, and jupytext says where they do not
            run(*jupytext, "--sync", "--pre-commit-mode", script, notebook)
        run("git", "add", script, notebook)
    run(sys.executable, str(REPOSITORY / ".hooks" / "export.py"))
    run("git", "add", "mnistlab_saved.py")


if __name__ == "__main__":
    main()
