#!/usr/bin/env bash
# Regenerate the README's figures and the outputs stored in mnistlab.ipynb from one run on full MNIST.
#   bash figures/regenerate.sh
# Needs MNIST in data/MNIST/raw/ (the lesson downloads it there) and the quick start's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
if [ ! -f data/MNIST/raw/train-images-idx3-ubyte ]; then
    echo "Full MNIST is not in data/MNIST/raw/ yet: run '$python mnistlab.py' once to download it." >&2
    exit 2
fi
# The notebook, Run All on full MNIST with the default settings; its figures are the README's.
unset $(compgen -e | grep '^MNISTLAB_' || true)
"$python" -m mnistlab_tools.export
.venv/bin/jupytext --update --to ipynb mnistlab.py  # the script is the source
MNISTLAB_OUT_DIR=figures .venv/bin/jupyter execute --inplace mnistlab.ipynb
rm -f figures/mnist_cnn.pt figures/mnist_training.pt
# The lesson's figure of other pens: one network trained without them and one with them.
"$python" benchmarks/handwriting.py --data-dir data --figure figures/other_pens.png
# Stamp the notebook with the code its outputs came from; a test compares it with the script's code.
"$python" - <<'PY'
import hashlib
import nbformat
notebook = nbformat.read("mnistlab.ipynb", as_version=4)
code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
notebook.metadata["mnistlab"] = {"outputs_of_code_sha256": hashlib.sha256(code.encode()).hexdigest()}
nbformat.write(notebook, "mnistlab.ipynb")
PY
echo "Updated figures/ and the outputs in mnistlab.ipynb."
