"""Seconds until the lesson's quick answers come, start-up included, as a learner waits for them:

    python benchmarks/startup.py --runs 5

Times `python mnistlab.py --help`, `python mnistlab.py --doctor` and `python predict.py --help`,
each run several times in a fresh process, and prints the median and the slowest as a Markdown
table. The doctor's probe of the download address is pointed at a closed port on this machine,
so that it fails at once: what is timed is the doctor, not the network.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python mnistlab.py --help": [str(REPO / "mnistlab.py"), "--help"],
    "python mnistlab.py --doctor": [str(REPO / "mnistlab.py"), "--doctor",
                                    "--mirror", "http://127.0.0.1:9/"],
    "python predict.py --help": [str(REPO / "predict.py"), "--help"],
}


def seconds(arguments):
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default: 5)")
    options = parser.parse_args()
    print("| command | median s | slowest s |")
    print("| --- | --- | --- |")
    for name, arguments in COMMANDS.items():
        times = [seconds(arguments) for _ in range(options.runs)]
        print(f"| `{name}` | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
