#!/usr/bin/env bash
# Regenerate the README's figures and the outputs stored in both lessons' notebooks (mnistlab.ipynb,
# handwriting.ipynb) from one run of each on full MNIST, lesson one first, as a learner runs them;
# and lesson three's figure (docs/many-gpus.md) from a run of it.
#   bash figures/regenerate.sh
# Needs MNIST in data/MNIST/raw/ (the lesson downloads it there) and the quick start's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
if [ ! -f data/MNIST/raw/train-images-idx3-ubyte ]; then
    echo "Full MNIST is not in data/MNIST/raw/ yet: run '$python mnistlab.py' once to download it." >&2
    exit 2
fi
# The notebooks, Run All on full MNIST with the default settings; their figures are the pages'.
unset $(compgen -e | grep '^MNISTLAB_' || true)
"$python" .hooks/export.py
.venv/bin/jupytext --update --to ipynb mnistlab.py handwriting.py  # the scripts are the source
# Run in a fresh folder of the lesson's files, as a learner's clone is, so that the stored outputs
# show the defaults (outputs/, data/) and this repository's own paths, and nothing here changes.
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
cp -r mnistlab.ipynb mnistlab.py handwriting.ipynb handwriting.py mnistlab_saved.py mnistlab_tools \
      pyproject.toml requirements.txt sample "$run"/
cp -r data "$run/data"  # a copy: a link would show its target in the outputs
ln -s "$PWD/.venv" "$run/.venv"
# nbclient from .venv/bin/python, not jupyter execute, whose script names the real .venv path.
# Lesson two compares its network with the one lesson one saved in outputs/.
for notebook in mnistlab.ipynb handwriting.ipynb; do
    (cd "$run" && .venv/bin/python -c "from nbclient.cli import main; main()" --inplace \
         "$notebook")
    cp "$run/$notebook" "$notebook"
done
cp "$run"/outputs/*.png figures/
# Lesson three's figure of how a batch is split over two ranks, from the start of its run.
"$python" ddp.py --ranks 2 --data-dir data --out-dir "$run/ddp" | grep -v "^epoch"
cp "$run/ddp/batch_over_ranks.png" figures/
# Lesson two's figure of other pens: one network trained without them and one with them.
"$python" benchmarks/handwriting.py --data-dir data --figure figures/other_pens.png
# Stamp the notebook with the code its outputs came from; a test compares it with the script's code.
"$python" - <<'PY'
import hashlib
import nbformat
for path in ("mnistlab.ipynb", "handwriting.ipynb"):
    notebook = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    notebook.metadata["mnistlab"] = {"outputs_of_code_sha256": hashlib.sha256(code.encode()).hexdigest()}
    nbformat.write(notebook, path)
PY
echo "Updated figures/ and the outputs in mnistlab.ipynb and handwriting.ipynb."
