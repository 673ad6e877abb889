#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one call of at most 10 minutes: tests/test_cuda.py (the
# three ways on CUDA, a GPU named by index, a seed repeated, out of memory), lesson three with a
# rank on each GPU (NCCL's start, the replicas equal), then the benchmark on cuda (5 seeds, the
# lesson's recipe and the original), into one report file.
#
#     bash benchmarks/gpu_check.sh REPORT_FOLDER [DATA_DIR]
#
# DATA_DIR holds MNIST/raw/ (full MNIST, for the timings docs/speed.md quotes; its four .gz files,
# 11 MB, are enough: the lesson unpacks them); without it the benchmark runs on the committed
# sample. The original recipe gets two epochs a seed, so that both fit in the 8 minutes. It uses PYTHON, else .venv/bin/python, else python3,
# with requirements.txt and tests/requirements.txt installed. Where PyTorch sees no CUDA GPU it
# says so in one line and ends with status 0.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "gpu_check: name the folder for its report: bash benchmarks/gpu_check.sh REPORT_FOLDER" >&2
    exit 2
fi
mkdir -p "$1" || exit 2
report="$1/gpu_check.txt"
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

if ! "$python" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "gpu_check: PyTorch sees no CUDA GPU here, so there is nothing to check; run it on a machine with one." | tee "$report"
    exit 0
fi
if [ $# -ge 2 ]; then data=(--data-dir "$2"); else data=(--sample); fi

{
    echo "# gpu_check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    nvidia-smi --query-gpu=index,name,compute_cap,driver_version,memory.total --format=csv
    "$python" -c "import torch; print('PyTorch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_arch_list())"
    echo
    echo "## tests/test_cuda.py"
    timeout 180 "$python" -m pytest -q -n 0 -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
    tests=$?
    echo
    gpus=$("$python" -c "import torch; print(torch.cuda.device_count())")
    echo "## lesson three: ddp.py --ranks $gpus (a rank on each GPU, through NCCL) --epochs 2 ${data[*]}"
    ddp_out=$(mktemp -d)
    timeout 120 "$python" ddp.py --ranks "$gpus" --epochs 2 --out-dir "$ddp_out" "${data[@]}" 2>&1 \
        | grep -v "batch/s" | tail -8
    ranks=${PIPESTATUS[0]}
    rm -rf "$ddp_out"
    echo
    echo "## benchmarks/benchmark.py --device cuda --seeds 5 --original-epochs 2 ${data[*]}"
    PYTHONUNBUFFERED=1 timeout 270 "$python" benchmarks/benchmark.py --device cuda --seeds 5 \
        --original-epochs 2 "${data[@]}" 2>&1
    timings=$?
} > "$report" 2>&1
cat "$report"
[ "$tests" -eq 0 ] && [ "$ranks" -eq 0 ] && [ "$timings" -eq 0 ]
