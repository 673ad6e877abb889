"""Point VS Code at the compute node of your Slurm job. Run it on your laptop, once the job runs
(docs/cluster.md, "VS Code on a compute node"):

    python vscode_node.py mnist-server

mnist-server is the login node's Host in your laptop's ~/.ssh/config. The script asks the login
node over SSH for the node of your newest running job named vscode (or the job you name with
--job, by name or number), and writes it into the Host block mnist-node of ~/.ssh/config, which
hops to the node through the login node. In VS Code, Remote-SSH: Connect to Host… → mnist-node.
Run it again for each new job: it rewrites its own block and nothing else, and the rest of the
file stays as it was, to the byte. It then asks ssh -G which node mnist-node means, and where
another block of the file still wins, it puts the file back as it was and names that block.
Standard library only, for any Python 3.8 or newer.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

START = "# >>> mnist-node: written by mnistlab's slurm/vscode_node.py; it rewrites this block >>>"
END = "# <<< mnist-node <<<"
# Your running jobs, newest first: id, node, and last the name, which may hold spaces.
SQUEUE = "squeue --me --states=RUNNING --noheader --sort=-i --format='%i|%N|%j'"
HOST_OR_MATCH = re.compile(r"\s*(host|match)\b\s*=?\s*(.*)", re.I)
# A host name as DNS allows it: labels of letters, digits and dashes, joined by dots.
NODE_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(\.(?!-)[A-Za-z0-9-]{1,63})*")


def running_jobs(squeue):
    """[(job, nodes, name)] from squeue's lines, newest first."""
    return [tuple(line.strip().split("|", 2)) for line in squeue.splitlines()
            if line.count("|") >= 2]


def node_of(jobs, wanted="vscode"):
    """(job, node) of the newest job named `wanted`, or numbered so, or None where there is none:
    another job (a training run, say) is not one to edit in; node is None where the job runs on
    several nodes."""
    chosen = [row for row in jobs if wanted in (row[0], row[2])]
    if not chosen:
        return None
    job, nodes, _ = chosen[0]
    return job, None if re.search(r"[,\[]", nodes) else nodes


def login_settings(login):
    """The user and the existing key files that `ssh -G` says the login node's Host uses."""
    shown = subprocess.run(["ssh", "-G", login], capture_output=True, text=True)
    if shown.returncode != 0:
        stop(f"ssh -G {login} failed: {shown.stderr.strip()}")
    pairs = [line.split(" ", 1) for line in shown.stdout.splitlines() if " " in line]
    user = next(value for key, value in pairs if key == "user")
    keys = [value for key, value in pairs if key == "identityfile"
            and Path(value.replace("~", str(Path.home()), 1)).is_file()]
    return user, keys


def quoted(value):
    """A value as ssh_config must have it: in double quotes where it holds a space (a Windows
    path, say), which would otherwise end it."""
    return f'"{value}"' if re.search(r'[\s#]', value) else value


def node_block(node, login, user, keys):
    lines = [START, "Host mnist-node", f"    HostName {node}", f"    User {quoted(user)}",
             *(f"    IdentityFile {quoted(key)}" for key in keys), f"    ProxyJump {login}", END]
    return [line + "\n" for line in lines]


def names_mnist_node(line):
    found = HOST_OR_MATCH.match(line)
    return bool(found) and found.group(1).lower() == "host" and "mnist-node" in [
        pattern.strip('"') for pattern in found.group(2).split()]


def marked(lines, marker):
    return [i for i, line in enumerate(lines) if line.strip() == marker]


def hosts(lines, first, end):
    """The Host and Match lines from index first to end."""
    return [i for i in range(first, end) if HOST_OR_MATCH.match(lines[i])]


def written_block(lines):
    """(first, after) of the lines of the block this script wrote before, or None. With its end
    marker deleted by hand, it ends before the next Host or Match; with its start marker
    deleted, it starts at its Host line."""
    starts, ends = marked(lines, START), marked(lines, END)
    if starts:
        first = starts[0]
        after = [i + 1 for i in ends if i > first] or hosts(lines, first + 2, len(lines))
        return first, after[0] if after else len(lines)
    before = hosts(lines, 0, ends[0]) if ends else []
    if before and names_mnist_node(lines[before[-1]]):
        return before[-1], ends[0] + 1
    return None


def with_block(config, block):
    """The SSH config text with `block` (lines) in place of the one written before, or added at
    its end; a Host mnist-node block of another's making stops it, since SSH would take the
    first HostName it finds, whichever block holds it."""
    ending = "\r\n" if "\r\n" in config else "\n"  # a config made on Windows keeps its ends
    block = [line.replace("\n", ending) for line in block]
    lines = config.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += ending
    where = written_block(lines)
    first, after = where or (len(lines), len(lines))
    others = [i + 1 for i, line in enumerate(lines) if names_mnist_node(line)
              and not first <= i < after]
    if others:
        stop(f"your SSH config already has a Host mnist-node block that this script did not "
             f"write (line {others[0]}), and SSH would use whichever comes first. Delete that "
             f"block, or rename its Host, then run this again.")
    return "".join(lines[:first] + block + lines[after:])


def read_config(config):
    """The SSH config's text ("" where there is none yet), or a stop that names why not."""
    if config.exists() and not config.is_file():  # a pipe would make reading it wait for ever
        stop(f"{config} is not a regular file: ssh reads its settings from a file there.")
    try:
        with open(config, newline="") as file:  # as it is, line ends and all
            return file.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as error:
        stop(f"cannot read {config} ({getattr(error, 'strerror', None) or error}): ssh cannot "
             f"read it either. Check it with ls -l {config} (yours, mode 600), then run this "
             f"again.")


def write_config(config, text):
    """Write `text` over the SSH config, whole or not at all, through a new file beside it: into
    the file a symbolic link points to (a config kept in a dotfiles repository, say), keeping its
    mode, so that a config only you may read stays so."""
    target = config.resolve()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", newline="") as file:
            file.write(text)
        if target.exists():
            shutil.copymode(target, partial)
        os.replace(partial, target)
    except OSError as error:
        Path(partial).unlink(missing_ok=True)
        stop(f"cannot write {target} ({error.strerror or error}); it is as it was.")


def hostname_ssh_takes(config, host="mnist-node"):
    """The HostName that ssh reads for `host` from this config file, through every Host, Match
    and Include in it."""
    shown = subprocess.run(["ssh", "-G", "-F", str(config), host], capture_output=True, text=True)
    return next((line.split(" ", 1)[1] for line in shown.stdout.splitlines()
                 if line.startswith("hostname ")), None)


def stop(message):
    """A mistake or a missing job: one line, and exit status 2, as the lesson's own stops."""
    print(f"vscode_node: {message}", file=sys.stderr)
    sys.exit(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("login", help="the login node's Host in ~/.ssh/config, e.g. mnist-server")
    parser.add_argument("--config", type=Path, default=Path.home() / ".ssh" / "config",
                        help="the SSH config file to write (default: %(default)s)")
    parser.add_argument("--job", default="vscode",
                        help="the job to connect to, by name or number (default: %(default)s)")
    arguments = parser.parse_args()
    login, config = arguments.login, arguments.config
    existed, before = config.exists(), read_config(config)
    asked = subprocess.run(["ssh", login, SQUEUE], capture_output=True, text=True)
    if asked.returncode != 0:
        stop(f"ssh {login} squeue failed: {asked.stderr.strip()}")
    jobs = running_jobs(asked.stdout)
    found = node_of(jobs, arguments.job)
    if found is None:
        stop(no_such_job(login, arguments.job, jobs))
    job, node = found
    if node is None:
        stop(f"job {job} runs on several nodes; ask for one (--nodes=1)")
    if not NODE_NAME.fullmatch(node):
        stop(f"the login node named {node!r} as the node of job {job}, which is not a host name; "
             f"nothing was written. Ask your centre which node it runs on (squeue -j {job}).")
    write_config(config, with_block(before, node_block(node, login, *login_settings(login))))
    taken = hostname_ssh_takes(config)
    if taken != node:
        write_config(config, before) if existed else config.unlink()
        stop(f"ssh would still take mnist-node to {taken}, from a Host or Match line above this "
             f"script's block in {config} whose pattern matches mnist-node, so {config} is as it "
             f"was. Move that block below, or narrow its pattern, then run this again.")
    print(f"mnist-node is now {node}, the node of your job {job}, through {login}: in VS Code, "
          f"Remote-SSH: Connect to Host… → mnist-node")


def no_such_job(login, wanted, jobs):
    """Why no job was chosen, and how to start or name one."""
    start = ("Start one there first, such as: salloc --job-name=vscode --cpus-per-task=4 "
             "--mem=8G --time=2:00:00")
    if not jobs:
        return f"you have no running job on {login}. {start}"
    listed = ", ".join(f"{job} ({name})" for job, _, name in jobs[:5])
    return (f"you have no running job named or numbered {wanted} on {login}, only {listed}. "
            f"{start}, or name yours: --job NUMBER")


if __name__ == "__main__":
    main()
