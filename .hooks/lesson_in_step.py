"""The pre-commit hook (.pre-commit-config.yaml): brings mnistlab.py and mnistlab.ipynb in step
from the one you staged, writes mnistlab_saved.py again from the script's #@save cells, and
stages what it changed, so that one commit takes all three.

The staged file is the source, whatever the files' times say: VS Code saves an open notebook
whenever it likes, so a stale notebook can be the newer file. pre-commit has put aside what you
did not stage, so the files here are what you staged."""

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PAIR = ("mnistlab.py", "mnistlab.ipynb")


def run(*command):
    finished = subprocess.run(command, cwd=REPOSITORY)
    if finished.returncode:
        sys.exit(finished.returncode)


def main():
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=REPOSITORY,
                            capture_output=True, text=True, check=True).stdout.split()
    jupytext = [sys.executable, "-m", "jupytext", "--quiet"]
    if "mnistlab.ipynb" not in staged:  # the script is the source; the outputs are kept
        run(*jupytext, "--update", "--to", "ipynb", "mnistlab.py")
    elif "mnistlab.py" not in staged:
        run(*jupytext, "--to", "py:percent", "mnistlab.ipynb")
    else:  # both staged: they must agree, and jupytext says where they do not
        run(*jupytext, "--sync", "--pre-commit-mode", *PAIR)
    run(sys.executable, "-m", "mnistlab_tools.export")
    run("git", "add", *PAIR, "mnistlab_saved.py")


if __name__ == "__main__":
    main()
