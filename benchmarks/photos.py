"""Seconds and bytes to read many photos at once with predict.py, as a learner with a folder of
photos would:

    python benchmarks/photos.py --photos 200

It makes that many photo-like JPEGs of held-out sample digits (as the tests do), saves a network
as the lesson would, and times `python predict.py` on all of them, start-up included. It prints
the wall time, the size of the figure your_digits.png and its size in pixels.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from torchvision import datasets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import mnistlab_saved  # noqa: E402
import mnistlab_tools as tools  # noqa: E402
from photo_like import photo_of  # noqa: E402  (beside this script)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="how many photos (default: 200)")
    options = parser.parse_args()
    digits = datasets.MNIST(tools.SAMPLE_DIR, train=False).data
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        paths = []
        for index in range(options.photos):
            paths.append(folder / f"photo_{index}.jpg")
            photo_of(digits[index % len(digits)], seed=index).save(paths[-1], quality=80)
        checkpoint = tools.network_path(folder, "mnist")
        tools.save_network(checkpoint, mnistlab_saved.DigitNet(), {"channels": 16},
                           [str(digit) for digit in range(10)], 0.1307, 0.3081)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "predict.py"), "--checkpoint", str(checkpoint),
                        *map(str, paths)], check=True, capture_output=True)
        seconds = time.perf_counter() - start
        figure = folder / "your_digits.png"
        width, height = Image.open(figure).size
        print(f"{options.photos} photos: {seconds:.1f} s of wall time for python predict.py; "
              f"your_digits.png is {figure.stat().st_size / 1e6:.2f} MB, {width} × {height} pixels")


if __name__ == "__main__":
    main()
