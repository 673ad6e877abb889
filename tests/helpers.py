"""The tests' helpers: where the lesson is, and how to run it as a learner would (a terminal, a
kernel, a fresh clone, offline, without rights); MNIST-shaped files; real file systems; and the
real clients that follow the README (an OpenSSH server on 127.0.0.1 in a home folder of its own,
JupyterLab, Chromium), skipped where the machine lacks them, except in CI
(MNISTLAB_REAL_CLIENTS=1), where a missing client is a failure."""

import ast
import contextlib
import gzip
import http.server
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jupytext
import matplotlib.colors
import numpy
import nbformat
import papermill
import pytest
import torch
from jupyter_client.manager import start_new_kernel
from torchvision import datasets

import mnistlab_saved as saved
import mnistlab_tools as tools

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "mnistlab.py"
NOTEBOOK = REPO / "mnistlab.ipynb"
# Lesson two, your own handwriting.
HANDWRITING = REPO / "handwriting.py"
HANDWRITING_NOTEBOOK = REPO / "handwriting.ipynb"
# Each lesson (a key of tools.LESSONS): its script and its notebook.
PAIRS = {"mnistlab": (SCRIPT, NOTEBOOK), "handwriting": (HANDWRITING, HANDWRITING_NOTEBOOK)}
# What a fresh clone holds for the lessons to run: the lessons, their modules, and the sample.
LESSON_FILES = ["mnistlab.py", "handwriting.py", "mnistlab_saved.py", "predict.py",
                "requirements.txt"]
FIGURES = [
    "sample_digits",
    "learning_curve",
    "what_the_network_sees",
    "confusion_matrix",
    "misclassified_digits",
]
HANDWRITING_FIGURES = ["a_batch_with_other_pens", "your_digits"]
RESULT = re.compile(
    r"^Result: (?P<seconds>[\d.]+) s of training on \w+, "
    r"test accuracy (?P<accuracy>[\d.]+) %",
    re.M,
)


def lesson_environment(out_dir, **settings):
    """The user's environment with no display, no stray MNISTLAB_* settings, and the given ones."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MNISTLAB_")
        and name not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
    }
    environment["MNISTLAB_OUT_DIR"] = str(out_dir)
    environment.update({f"MNISTLAB_{name.upper()}": str(value) for name, value in settings.items()})
    return environment


def as_a_user_without_rights():
    """The start of a command that runs as a user whom file permissions bind. Root passes every
    permission check, so root drops the two capabilities that let it; anyone else already is one."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def run_lesson(*options, cwd, environment, script=SCRIPT, timeout=300, without_rights=False):
    """`python mnistlab.py OPTIONS` in a terminal, started from `cwd`."""
    user = as_a_user_without_rights() if without_rights else []
    return subprocess.run(
        [*user, sys.executable, str(script), *options],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class StartedLesson:
    """`python mnistlab.py OPTIONS` started in a terminal, to be signalled while it runs: what it
    prints is read as it comes, every wait has a time limit, and it is killed at the end of the
    `with` block if still running."""

    def __init__(self, *options, cwd, out_dir):
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), *options], cwd=cwd,
            env={**lesson_environment(out_dir), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self.lines, self.errors = queue.Queue(), []
        # Both pipes are read all along: the progress bar alone would fill stderr's.
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put),
                         daemon=True).start()
        self._reading_errors = threading.Thread(
            target=self._read, args=(self.process.stderr, self.errors.append), daemon=True)
        self._reading_errors.start()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.kill()
        self.process.wait()

    @staticmethod
    def _read(pipe, keep):
        for line in pipe:
            keep(line)
        keep("")

    def printed_until(self, prefix, seconds=120):
        """What it printed up to its first line that starts with `prefix`."""
        deadline, printed = time.monotonic() + seconds, []
        while not printed or not printed[-1].startswith(prefix):
            try:
                printed.append(self.lines.get(timeout=max(0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no line starting {prefix!r} in {seconds} s: {''.join(printed)}")
            assert printed[-1], f"it ended before {prefix!r}: {''.join(printed + self.errors)}"
        return "".join(printed)

    def signal(self, number):
        self.process.send_signal(number)

    def finished(self, seconds=120):
        """(exit status, the rest of what it printed, what it printed on stderr) once it ends."""
        status = self.process.wait(timeout=seconds)
        self._reading_errors.join(timeout=10)
        rest = []
        while not rest or rest[-1]:
            rest.append(self.lines.get(timeout=10))
        return status, "".join(rest), "".join(self.errors)


def run_predict(*arguments, cwd, environment, folder=REPO, without_rights=False):
    """`python predict.py ARGUMENTS` in a terminal, started from `cwd`."""
    user = as_a_user_without_rights() if without_rights else []
    return subprocess.run(
        [*user, sys.executable, str(folder / "predict.py"), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def papermill_in_a_clone(folder, notebook, *parameters):
    """papermill NOTEBOOK done.ipynb -p NAME VALUE … in a fresh clone in `folder`, with the
    parameters alone, as a learner runs it: (the finished process, what the cells printed)."""
    fresh_clone(folder)
    shutil.copy2(notebook, folder / notebook.name)
    environment = lesson_environment(folder / "unused")
    del environment["MNISTLAB_OUT_DIR"]
    options = [word for name, value in zip(parameters[::2], parameters[1::2], strict=True)
               for word in ("-p", name, value)]
    finished = subprocess.run([sys.executable, "-m", "papermill", notebook.name, "done.ipynb",
                               *options], cwd=folder, env=environment, capture_output=True,
                              text=True, timeout=300)
    if finished.returncode:
        return finished, ""
    return finished, printed(output for cell in nbformat.read(folder / "done.ipynb", 4).cells
                             if cell.cell_type == "code" for output in cell.outputs)


def fresh_clone(folder):
    """The lesson, its modules and the sample in a folder of their own, as a fresh clone has them:
    no data/, no outputs/, no runs/."""
    for name in LESSON_FILES:
        shutil.copy2(REPO / name, folder / name)
    shutil.copytree(REPO / "mnistlab_tools", folder / "mnistlab_tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "sample", folder / "sample")
    return folder / "mnistlab.py"


def offline(environment):
    """No network, as behind a firewall: a proxy on a closed local port fails every download."""
    closed = "http://127.0.0.1:9"
    return {
        **environment,
        "http_proxy": closed,
        "https_proxy": closed,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": "",
        "NO_PROXY": "",
    }


def lesson_parameters(notebook=NOTEBOOK):
    """The values of a lesson's parameters cell, as papermill reads them, without running it."""
    return {
        name: ast.literal_eval(parameter["default"])
        for name, parameter in papermill.inspect_notebook(str(notebook)).items()
    }


def training_run(out_dir, images=2000, *options, epochs=2, network=saved.DigitNet):
    """A TrainingRun with the lesson's settings on the sample for `epochs`, saving into out_dir,
    around a fresh network and blank images: for tests that drive its epochs by hand."""
    settings = tools.read_settings(lesson_parameters(), ["--sample", "--epochs", str(epochs),
                                                         "--out-dir", str(out_dir), *options], {})
    torch.manual_seed(0)
    model, pictures = network(settings.channels), torch.zeros(images, 1, 28, 28)
    steps_per_epoch = saved.steps_in_an_epoch(pictures, settings.batch_size)
    optimizer, scheduler = saved.one_cycle_adam(model, settings.lr, epochs * steps_per_epoch)
    return tools.TrainingRun(settings, model, optimizer, scheduler, pictures, steps_per_epoch)


class Kernel:
    """A fresh Jupyter kernel in the repository folder, fed code the way VS Code's Interactive
    Window feeds it."""

    def __init__(self, environment, cwd=REPO):
        self.environment, self.cwd = environment, cwd

    def __enter__(self):
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", cwd=str(self.cwd), env=self.environment
        )
        return self

    def run(self, source, timeout=240):
        """Run one cell: its reply status and the contents of its output messages."""
        outputs = []
        reply = self.client.execute_interactive(
            source, timeout=timeout, output_hook=lambda message: outputs.append(message["content"])
        )
        return reply["content"]["status"], outputs

    def __exit__(self, *_):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def code_cells(script=SCRIPT):
    return [cell.source for cell in jupytext.read(script).cells if cell.cell_type == "code"]


def cell_index(phrase, cells=None):
    """The position of the first code cell that holds `phrase`."""
    return next(i for i, source in enumerate(cells or code_cells()) if phrase in source)


def colours_drawn(figure, names=("firebrick", "darkorange", "lightsteelblue")):
    """Which of these colours the figure's pixels show, drawn as the saved PNG is."""
    figure.canvas.draw()
    pixels = {tuple(pixel) for pixel in
              numpy.asarray(figure.canvas.buffer_rgba())[..., :3].reshape(-1, 3).tolist()}
    return {name for name in names
            if tuple(round(part * 255) for part in matplotlib.colors.to_rgb(name)) in pixels}


def figures_drawn(source):
    return len(re.findall(r"^\s*figures\.show\(", source, re.M))


def images_in(outputs):
    return sum("image/png" in output.get("data", {}) for output in outputs)


def printed(outputs):
    return "".join(output.get("text", "") for output in outputs)


def on_stderr(outputs):
    return "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")


def figures_of_every_cell(environment):
    """Run every code cell of the lesson in order in one fresh kernel, as the Interactive Window
    sends them, each without an error; the number of figures they showed."""
    shown = 0
    with Kernel(environment) as kernel:
        for source in code_cells():
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            shown += images_in(outputs)
    return shown


# Real clients

# The learner's pages, as one text: README.md and the pages it links in docs/.
DOCS = "\n".join(page.read_text(encoding="utf-8")
                 for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])


def require(*commands, why):
    """Skip, or in CI fail, unless every command is on this machine."""
    missing = [command for command in commands if not shutil.which(command)]
    if missing or (why == "root" and os.geteuid() != 0):
        message = f"needs {', '.join(missing) or 'root'} ({why})"
        if os.environ.get("MNISTLAB_REAL_CLIENTS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def readme_lines(start):
    """The pages' command lines that start with `start`, in a code block or in backticks."""
    lines = re.findall(rf"^\s*`?({re.escape(start)}[^`\n]*)`?[,.;]?$", DOCS, re.M)
    assert lines, f"the README and docs/ have no command starting {start!r}"
    return lines


def readme_line(start):
    """The one command line of the pages that starts with `start`."""
    (line,) = set(readme_lines(start))
    return line


def readme_block(first_line):
    """The pages' code block that begins with `first_line`."""
    match = re.search(rf"^```[a-z]*\n({re.escape(first_line)}\n.*?)^```", DOCS, re.M | re.S)
    assert match, f"the README and docs/ have no code block starting {first_line!r}"
    return match.group(1)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing answered on port {port} within {seconds} s")


class Server:
    """This machine seen as both the learner's laptop and the server: root, but with a home folder
    of its own (in a private mount namespace), an OpenSSH server on 127.0.0.1:port that accepts
    a password once, and no network beyond loopback."""

    password = "first-login-only"

    def __init__(self, folder):
        self.folder = folder
        self.home = folder / "home"
        self.port = free_port()
        self.holder = None
        self.sshd = None

    def inside(self, command, **options):
        """Run `command` (a bash line) in the namespace, as the learner types it."""
        return subprocess.run(
            ["nsenter", "-t", str(self.holder.pid), "-m", "--", "bash", "-c", command],
            capture_output=True, text=True, timeout=options.pop("timeout", 120), **options)

    def start_inside(self, command, **options):
        return subprocess.Popen(
            ["nsenter", "-t", str(self.holder.pid), "-m", "--", "bash", "-c", command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options)

    def __enter__(self):
        require("sshd", "ssh", "ssh-copy-id", "unshare", "nsenter", "openssl", why="root")
        self.home.mkdir(mode=0o700)
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                        "sleep", "infinity"])
        time.sleep(0.2)
        # A fresh home over /root, with root's other files (Python among them) still in it.
        real_home = Path("/root")
        mounts = []
        for entry in real_home.iterdir():
            if entry.name != ".ssh":
                target = self.home / entry.name
                target.mkdir() if entry.is_dir() else target.touch()
                mounts.append(f"mount --bind {entry} {target}")
        shadow = self.folder / "shadow"
        hashed = subprocess.run(["openssl", "passwd", "-6", self.password], capture_output=True,
                                text=True, check=True).stdout.strip()
        shadow.write_text(re.sub(r"^root:[^:]*:", f"root:{hashed}:",
                                 Path("/etc/shadow").read_text(), flags=re.M))
        shadow.chmod(0o600)
        mounts += [f"mount --rbind {self.home} /root", f"mount --bind {shadow} /etc/shadow"]
        mounted = self.inside(" && ".join(mounts))
        assert mounted.returncode == 0, mounted.stderr
        host_key = self.folder / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True)
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {self.folder}/sshd.pid\nPermitRootLogin yes\nPasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes yes\n"
            "AuthorizedKeysFile .ssh/authorized_keys\nSubsystem sftp internal-sftp\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        self.sshd = self.start_inside(f"exec /usr/sbin/sshd -D -e -f {config}")
        wait_for_port(self.port)
        return self

    def __exit__(self, *_):
        namespace = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")
        for process in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError):
                if os.readlink(process / "ns" / "mnt") == namespace:
                    os.kill(int(process.name), 9)
        self.holder.wait()
        if self.sshd:
            self.sshd.communicate()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


@contextlib.contextmanager
def jupyterlab(folder, environment):
    """JupyterLab from the tests' environment, serving `folder` on 127.0.0.1, with a token and a
    configuration of its own; yields its address."""
    lab_command = str(Path(sys.prefix) / "bin" / "jupyter-lab")
    require(lab_command, why="JupyterLab, from tests/requirements.txt")
    port, token = free_port(), "mnistlab-test"
    settings = folder.parent / "jupyter"
    lab = subprocess.Popen(
        [lab_command, "--no-browser", "--ip", "127.0.0.1",
         "--port", str(port), f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={folder}", "--LabApp.news_url=None", "--allow-root"],
        env={**environment, "JUPYTER_CONFIG_DIR": str(settings / "config"),
             "JUPYTER_RUNTIME_DIR": str(settings / "runtime")},
        stdout=subprocess.DEVNULL, stderr=(folder.parent / "jupyterlab.log").open("w"))
    try:
        wait_for_port(port, seconds=60)
        yield f"http://127.0.0.1:{port}", token
    finally:
        lab.terminate()
        lab.wait(timeout=30)


@contextlib.contextmanager
def chromium_page(folder):
    """A page of headless Chromium (Debian's, driven by Playwright), with a fresh profile, and
    Playwright's `expect`."""
    require(CHROMIUM, why="Debian's chromium package")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(folder / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            yield browser.new_page(), playwright_api.expect
        finally:
            browser.close()


# Wrong turns: plain stops, MNIST-shaped files, real file systems, a mirror


def assert_plain_stop(finished, *phrases):
    """Exit status 2, no traceback, no training started, and a message with each phrase."""
    assert finished.returncode == 2, (finished.stdout, finished.stderr)
    assert "Traceback" not in finished.stderr and "epoch 1" not in finished.stdout
    message = finished.stderr.strip()
    assert message.startswith("mnistlab: ") and len(message.splitlines()) == 1, message
    for phrase in phrases:
        assert phrase in message, message


def write_mnist_like(raw_dir, short=(), packed=False):
    """MNIST-shaped files of zeros; those named in `short` cut off part-way, as by an interrupted
    download. packed: as the .gz files that a mirror serves."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, (magic, count, header) in {
        "train-images-idx3-ubyte": (2051, 60_000, 16),
        "train-labels-idx1-ubyte": (2049, 60_000, 8),
        "t10k-images-idx3-ubyte": (2051, 10_000, 16),
        "t10k-labels-idx1-ubyte": (2049, 10_000, 8),
    }.items():
        body = count * (784 if magic == 2051 else 1)
        content = (
            magic.to_bytes(4, "big")
            + count.to_bytes(4, "big")
            + bytes([0, 0, 0, 28] * ((header - 8) // 4))
            + bytes(body // 3 if name in short else body)
        )
        if packed:
            (raw_dir / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
        else:
            (raw_dir / name).write_bytes(content)


# Data


@contextlib.contextmanager
def tmpfs(folder, size):
    """A real file system of `size` mounted on `folder`, where root may mount one."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_):
        pass


def held_out_digits(count_per_class=10):
    test = datasets.MNIST(REPO / "sample", train=False)
    chosen = torch.cat(
        [torch.nonzero(test.targets == digit).flatten()[:count_per_class] for digit in range(10)]
    )
    return test.data[chosen], test.targets[chosen]
