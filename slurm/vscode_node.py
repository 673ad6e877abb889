"""Point VS Code at the compute node of your Slurm job. Run it on your laptop, once the job runs
(docs/cluster.md, "VS Code on a compute node"):

    python vscode_node.py mnist-server

mnist-server is the login node's Host in your laptop's ~/.ssh/config. The script asks the login
node over SSH for the node of your newest running job named vscode (or, with no job of that name,
of your newest running job), and writes it into the Host block mnist-node of ~/.ssh/config,
which hops to the node through the login node. In VS Code, Remote-SSH: Connect to Host… →
mnist-node. Run it again for each new job: it rewrites its own block and nothing else.
Standard library only, for any Python 3.8 or newer.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

START = "# >>> mnist-node: written by mnistlab's slurm/vscode_node.py; it rewrites this block >>>"
END = "# <<< mnist-node <<<"
# Your running jobs, newest first: id, name, node.
SQUEUE = "squeue --me --states=RUNNING --noheader --sort=-i --format='%i %j %N'"


def node_of(jobs, name="vscode"):
    """(job, node) from squeue's lines: the newest job named `name`, or else the newest job."""
    rows = [line.split() for line in jobs.splitlines() if len(line.split()) == 3]
    chosen = [row for row in rows if row[1] == name] or rows
    if not chosen:
        return None
    job, _, nodes = chosen[0]
    return job, None if re.search(r"[,\[]", nodes) else nodes  # None: several nodes


def login_settings(login):
    """The user and the existing key files that `ssh -G` says the login node's Host uses."""
    shown = subprocess.run(["ssh", "-G", login], capture_output=True, text=True, check=True)
    pairs = [line.split(" ", 1) for line in shown.stdout.splitlines() if " " in line]
    user = next(value for key, value in pairs if key == "user")
    keys = [value for key, value in pairs if key == "identityfile"
            and Path(value.replace("~", str(Path.home()), 1)).is_file()]
    return user, keys


def node_block(node, login, user, keys):
    lines = [START, "Host mnist-node", f"    HostName {node}", f"    User {user}",
             *(f"    IdentityFile {key}" for key in keys), f"    ProxyJump {login}", END]
    return "\n".join(lines) + "\n"


def with_block(config, block):
    """The SSH config text with `block` in place of the one written before, or added at its end."""
    written = re.compile(re.escape(START) + ".*?" + re.escape(END) + r"\n?", re.S)
    if written.search(config):
        return written.sub(lambda _: block, config, count=1)
    return config + ("\n" if config and not config.endswith("\n") else "") + block


def stop(message):
    """A mistake or a missing job: one line, and exit status 2, as the lesson's own stops."""
    print(f"vscode_node: {message}", file=sys.stderr)
    sys.exit(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("login", help="the login node's Host in ~/.ssh/config, e.g. mnist-server")
    parser.add_argument("--config", type=Path, default=Path.home() / ".ssh" / "config",
                        help="the SSH config file to write (default: %(default)s)")
    arguments = parser.parse_args()
    login, config = arguments.login, arguments.config
    asked = subprocess.run(["ssh", login, SQUEUE], capture_output=True, text=True)
    if asked.returncode != 0:
        stop(f"ssh {login} squeue failed: {asked.stderr.strip()}")
    found = node_of(asked.stdout)
    if found is None:
        stop(f"you have no running job on {login}. Start one there first, such as: salloc "
             f"--job-name=vscode --cpus-per-task=4 --mem=8G --time=2:00:00")
    job, node = found
    if node is None:
        stop(f"job {job} runs on several nodes; ask for one (--nodes=1)")
    config.parent.mkdir(mode=0o700, exist_ok=True)
    before = config.read_text() if config.exists() else ""
    written = config.with_name(config.name + ".partial")  # whole, or the old one stays
    written.write_text(with_block(before, node_block(node, login, *login_settings(login))))
    if config.exists():
        shutil.copymode(config, written)  # a config only you may read stays so
    os.replace(written, config)
    print(f"mnist-node is now {node}, the node of your job {job}, through {login}: in VS Code, "
          f"Remote-SSH: Connect to Host… → mnist-node")


if __name__ == "__main__":
    main()
