"""Paths and names as they come from elsewhere (a .env file, papermill, a terminal, a phone, a
broken driver) end in the value the learner meant or in one plain line, never in a traceback
or a wait without end."""

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from io import BytesIO
from pathlib import Path

import pytest
import torch
from fake_data import held_out_digits
from run_outputs import assert_plain_stop
from lesson_runs import (
    HANDWRITING_NOTEBOOK,
    REPO,
    lesson_environment,
    lesson_parameters,
    run_lesson,
    run_predict,
)

import mnistlab_tools as tools
from mnistlab_tools.data import data_problems
from mnistlab_tools.doctor import (build_for, driver_cuda_version, driver_line, free_space_line,
                                   gpu_lines, gpus_seen, install_command)
from mnistlab_tools.files import HERE, why_not_writable
from mnistlab_tools.settings import SettingsError
from benchmarks.photo_like import photo_of
from mnistlab_tools import doctor

CELL = lesson_parameters()
PHOTOS_CELL = lesson_parameters(HANDWRITING_NOTEBOOK)  # lesson two's, which reads photos


def handwriting_settings(cell, arguments):
    return tools.read_settings(cell, arguments, {}, "handwriting")
TOO_LONG = "x" * 300  # over the 255 bytes a file system allows in one name


def test_spaces_left_around_a_folder_in_the_environment_are_not_part_of_it():
    settings = tools.read_settings(CELL, [], {"MNISTLAB_OUT_DIR": "outputs ",
                                              "MNISTLAB_DATA_DIR": " /srv/mnist"})
    assert settings.out_dir == Path("outputs") and settings.data_dir == Path("/srv/mnist")


def test_numbers_from_papermill_are_names_as_the_parameters_cell_types_them(tmp_path):
    settings = tools.read_settings({**CELL, "out_dir": 2024}, [], {})
    assert settings.out_dir == HERE / "2024"
    with pytest.raises(SettingsError, match="photos in the parameters cell: '.*7' is not "
                                                  "allowed: there is no such file"):
        handwriting_settings({**PHOTOS_CELL, "photos": 7}, [])


def test_photos_given_twice_are_all_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"")
    settings = handwriting_settings(PHOTOS_CELL, ["--photos", "a.jpg", "--photos", "b.jpg",
                                                     "c.jpg"])
    assert settings.photos == [Path("a.jpg"), Path("b.jpg"), Path("c.jpg")]


@pytest.mark.parametrize("make, phrase", [
    (lambda path: os.mkfifo(path), "not a regular file"),
    (lambda path: None, "there is no such file"),
    (lambda path: path.mkdir(), "it is a folder, not a photo"),
])
def test_a_photo_that_is_not_a_file_is_refused_in_the_settings(tmp_path, make, phrase):
    make(tmp_path / "photo.jpg")
    with pytest.raises(SettingsError, match=f"--photos: .*{phrase}"):
        handwriting_settings(PHOTOS_CELL, ["--photos", str(tmp_path / "photo.jpg")])


def test_a_name_too_long_for_the_file_system_is_named_not_raised(tmp_path):
    with pytest.raises(SettingsError, match="unreachable .File name too long"):
        handwriting_settings(PHOTOS_CELL, ["--photos", str(tmp_path / TOO_LONG / "a.jpg")])
    settings = tools.read_settings(CELL, ["--data-dir", str(tmp_path / TOO_LONG)], {})
    assert data_problems(settings.data_dir / "MNIST" / "raw") == []
    assert free_space_line("data", settings.data_dir).startswith("Disk for the data")
    assert why_not_writable(tmp_path / TOO_LONG) == "File name too long"  # --out-dir


def test_the_doctor_looks_at_a_folder_you_may_not_enter_without_a_traceback(tmp_path):
    locked = tmp_path / "locked"
    (locked / "inner").mkdir(parents=True)
    locked.chmod(0)
    try:
        finished = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable,
             str(REPO / "mnistlab.py"), "--doctor", "--data-dir", str(locked / "inner"),
             "--mirror", "http://127.0.0.1:9/"] if os.geteuid() == 0 else
            [sys.executable, str(REPO / "mnistlab.py"), "--doctor", "--data-dir",
             str(locked / "inner"), "--mirror", "http://127.0.0.1:9/"],
            cwd=tmp_path, env=lesson_environment(tmp_path / "out"), capture_output=True,
            text=True, timeout=60)
    finally:
        locked.chmod(0o755)
    assert finished.returncode == 0 and finished.stderr == "", finished.stderr
    assert "Disk for the data" in finished.stdout


def test_a_photo_named_in_another_encoding_is_printed_and_drawn(tmp_path):
    name = os.fsdecode(b"caf\xe9.jpg")  # as Python reads a Latin-1 name from the disk
    assert tools.readable(tmp_path / name).endswith("caf\ufffd.jpg")
    digits = torch.zeros(1, 28, 28)
    figure = tools.readings_figure(digits, torch.full((1, 10), 0.1), [name])
    figure.savefig(BytesIO(), format="png")


def test_predict_never_waits_on_a_named_pipe(trained_out_dir, tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    photo_of(held_out_digits(count_per_class=1)[0][7], seed=3).save(tmp_path / "seven.jpg")
    finished = run_predict("pipe.jpg", "seven.jpg", cwd=tmp_path,
                           environment=lesson_environment(trained_out_dir))
    assert finished.returncode == 0, finished.stderr
    assert "Skipped pipe.jpg: it is not a regular file" in finished.stdout
    assert "seven.jpg: 7" in finished.stdout


def test_a_stand_in_nvidia_smi_that_prints_its_failure_is_not_taken_for_a_driver(tmp_path,
                                                                                 monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate "
                    "with the NVIDIA driver.\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert "answers, but not with a driver version" in driver_line()
    assert gpus_seen() == []
    assert gpu_lines([]) == ["GPUs: none; the lesson trains on the CPU"]


def stand_in_nvidia_smi(folder, header):
    """An nvidia-smi on PATH that shows `header` as its table's top and one GPU, as a driver
    for that CUDA version does."""
    fake = folder / "nvidia-smi"
    fake.write_text(f"""#!/bin/sh
case "$1" in
  --query-gpu=driver_version) echo 550.54.15 ;;
  --query-gpu=*) echo "0, NVIDIA A100-SXM4-40GB, 40000, 40960, 8.0" ;;
  *) echo "| NVIDIA-SMI 550.54.15    {header} |" ;;
esac
""")
    fake.chmod(0o755)


PYTORCH_INDEX = "--index-url https://download.pytorch.org/whl/"


@pytest.mark.parametrize("header, build, driver_is_too_old", [
    ("Driver Version: 580.65.06    CUDA Version: 13.0", "install -r requirements.txt", False),
    ("Driver Version: 550.54.15    CUDA Version: 12.4", PYTORCH_INDEX + "cu126", True),
    ("Driver Version: 470.82.01    CUDA Version: 11.4", PYTORCH_INDEX + "cu118", True),
    ("CUDA Version: ERR!", PYTORCH_INDEX + "cpu", None),
    ("Driver Version: 550.54.15    CUDA Version: N/A", PYTORCH_INDEX + "cpu", None),
])
def test_the_doctor_gives_the_install_command_for_the_drivers_cuda(tmp_path, monkeypatch,
                                                                    header, build,
                                                                    driver_is_too_old):
    """Under pip's default PyTorch, built for CUDA 13.0; None: the driver names no CUDA."""
    stand_in_nvidia_smi(tmp_path, header)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(doctor, "torch_build", lambda: ("2.14.1+cu130", "13.0"))
    command = install_command(driver_cuda_version())
    assert command.startswith("rm -rf .venv && python3 -m venv .venv && .venv/bin/pip install ")
    assert build in command and command.endswith("-r requirements.txt")
    lines = gpu_lines(gpus_seen())
    assert lines[0].startswith("GPU 0 (nvidia-smi's numbering): NVIDIA A100-SXM4-40GB")
    assert lines[1:] == ([f"GPUs: PyTorch cannot use them: it is built for CUDA 13.0, and the "
                          f"driver supports CUDA {header.split()[-1]} at most. Install "
                          f"{build_for(driver_cuda_version()).describe()} into a "
                          f"fresh .venv: {command}"] if driver_is_too_old else [])
    said = driver_line()
    assert said.startswith("NVIDIA driver 550.54.15, ") and "None" not in said
    assert ("which does not say which CUDA it supports" in said) == (driver_is_too_old is None)


def test_without_nvidia_smi_the_doctor_offers_the_cpu_build(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    assert driver_cuda_version() is None
    assert "whl/cpu" in install_command(None)
    assert gpu_lines(gpus_seen()) == ["GPUs: none; the lesson trains on the CPU"]


class WebPage(http.server.BaseHTTPRequestHandler):
    """A mirror that answers every request with a web page, as a firewall's login page does."""

    def do_GET(self):
        body = b"<html><body>Please log in to use the internet.</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


class Slow(WebPage):
    """A mirror that starts to send a .gz file and then takes its time."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "9912422")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + bytes(1 << 16))
        self.wfile.flush()
        time.sleep(30)


def serving(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def without_proxies(environment):
    return {name: value for name, value in environment.items()
            if name.lower() not in ("http_proxy", "https_proxy")}


def test_a_mirror_that_sends_a_web_page_is_named_and_nothing_is_kept(tmp_path):
    server, address = serving(WebPage)
    try:
        finished = subprocess.run(
            [sys.executable, str(REPO / "mnistlab.py"), "--data-dir", "data", "--mirror",
             address, "--epochs", "1"], cwd=tmp_path, capture_output=True, text=True,
            timeout=300, env=without_proxies(lesson_environment(tmp_path / "out")))
    finally:
        server.shutdown()
    assert finished.returncode == 0, finished.stderr
    assert f"{address}: what it sent is not a .gz file (it says text/html)" in finished.stdout
    assert "Going on with the small sample" in finished.stdout
    assert list((tmp_path / "data" / "MNIST" / "raw").iterdir()) == []


def test_ctrl_c_during_a_slow_download_leaves_nothing_half_written(tmp_path):
    server, address = serving(Slow)
    raw_dir = tmp_path / "data" / "MNIST" / "raw"
    lesson = subprocess.Popen(
        [sys.executable, str(REPO / "mnistlab.py"), "--data-dir", "data", "--mirror", address],
        cwd=tmp_path, env=without_proxies(lesson_environment(tmp_path / "out")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(raw_dir.glob(".*.partial")):
            assert time.monotonic() < deadline and lesson.poll() is None, lesson.stderr.read()
            time.sleep(0.1)
        lesson.send_signal(signal.SIGINT)
        _, errors = lesson.communicate(timeout=60)
    finally:
        server.shutdown()
    assert lesson.returncode == 130 and "Traceback" not in errors, errors
    assert "downloading train-images-idx3-ubyte.gz" in errors  # the progress bar, with its size
    assert list(raw_dir.iterdir()) == []


# A file where the project makes a folder of its own

def a_folder_with_files_in_the_way(folder):
    (folder / "notes").write_text("my notes")
    (folder / "data").mkdir()
    (folder / "data" / "MNIST").write_text("not a folder")
    (folder / "out").mkdir()
    (folder / "out" / "runs").write_text("not a folder")


@pytest.mark.parametrize("options, blocker, option", [
    (["--get-data", "--data-dir", "notes"], "notes is a file", "--data-dir"),
    (["--get-data", "--data-dir", "data"], "data/MNIST is a file", "--data-dir"),
    (["--sample", "--tensorboard", "--out-dir", "out"], "it is a file", "--out-dir"),  # runs/
])
def test_a_file_where_a_folder_of_the_lessons_goes_is_named_in_one_line(tmp_path, options,
                                                                         blocker, option):
    a_folder_with_files_in_the_way(tmp_path)
    finished = run_lesson(*options, "--mirror", "http://127.0.0.1:9/", cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert_plain_stop(finished, blocker, f"another folder with {option}")
    assert (tmp_path / "notes").read_text() == "my notes"  # nothing lost


@pytest.mark.parametrize("data_dir, blocker", [("notes", "notes is a file, not a folder"),
                                               ("data", "data/MNIST is a file, not a folder")])
def test_a_file_where_the_data_goes_is_named_and_the_sample_read(tmp_path, data_dir, blocker):
    a_folder_with_files_in_the_way(tmp_path)
    finished = run_lesson("--data-dir", data_dir, "--mirror", "http://127.0.0.1:9/",
                          cwd=tmp_path, environment=lesson_environment(tmp_path / "out"))
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert f"{blocker}, so MNIST cannot be put in {data_dir}/MNIST/raw. Move the file away, or " \
           f"name another folder with --data-dir" in finished.stdout
    assert "on 500 sample test digits" in finished.stdout
    assert (tmp_path / "notes").read_text() == "my notes"


def test_an_output_folder_below_a_file_names_the_file(tmp_path):
    (tmp_path / "notes").write_text("my notes")
    assert why_not_writable(tmp_path / "notes" / "outputs") == \
        f"{tools.readable(tmp_path / 'notes')} is a file, not a folder"


def test_a_path_in_a_message_never_raises(tmp_path, monkeypatch):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a link to itself
    assert tools.readable(tmp_path / "loop" / "x").endswith("loop/x")
    latin1 = os.fsdecode(b"caf\xe9.jpg")  # a name in another encoding than UTF-8
    assert tools.readable(latin1) == "caf\N{REPLACEMENT CHARACTER}.jpg"
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the folder the learner stands in, removed by another shell
    assert tools.readable("outputs/mnist_cnn.pt") == "outputs/mnist_cnn.pt"
