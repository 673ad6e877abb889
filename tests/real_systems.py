"""The real systems a learner meets, run on this machine for the tests: an OpenSSH server on
127.0.0.1 in a home folder of its own, JupyterLab, Chromium, a small file system (tmpfs), free
ports. Each is skipped where the machine lacks it, except in CI (MNISTLAB_REAL_CLIENTS=1), where
a missing one is a failure."""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def require(*commands, why):
    """Skip, or in CI fail, unless every command is on this machine."""
    missing = [command for command in commands if not shutil.which(command)]
    if missing or (why == "root" and os.geteuid() != 0):
        message = f"needs {', '.join(missing) or 'root'} ({why})"
        if os.environ.get("MNISTLAB_REAL_CLIENTS") == "1":
            pytest.fail(message)
        pytest.skip(message)


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
        self.holder.wait(timeout=30)
        if self.sshd:
            self.sshd.communicate(timeout=30)


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
