"""On a Slurm cluster: slurm/train.sbatch trains, survives a requeue and its time limit, and ends
as an uncut run would; the lesson stops well on SIGTERM and SIGUSR1; the doctor knows a job from
a login node. The jobs run on a real one-node cluster, this machine (slurm_cluster.py)."""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from lesson_runs import (
    RANKS_RUN,
    REPO,
    RESULT,
    as_a_user_without_rights,
    fresh_clone,
    lesson_environment,
    run_lesson,
    training_run,
)
from real_systems import Server, tmpfs
from run_outputs import assert_plain_stop
from slurm_cluster import SlurmCluster

from mnistlab_tools.device import short_report
from mnistlab_tools.doctor import cluster_lines, usable_cores
from mnistlab_tools.run import STOP_SIGNALS

# One worker runs these, and with them the one cluster: jobs of two would share the cores.
pytestmark = pytest.mark.xdist_group("slurm")

# 125 batches an epoch, and five epochs after the first: a signal sent once epoch 1 is saved
# finds the run still training, with seconds to spare.
SAMPLE_RUN = "MNISTLAB_SAMPLE=1,MNISTLAB_EPOCHS=6,MNISTLAB_BATCH_SIZE=16"
# This node has two cores and no GPU: each job takes one core and, as the script's comment
# says, sbatch --gpus=0 makes it a CPU-only job. Options given to sbatch win over #SBATCH lines.
SMALL_JOB = ["--gpus=0", "--cpus-per-task=1", "--mem=2G"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone of the lesson with its batch script, whose .venv is the tests' Python's."""
    folder = tmp_path_factory.mktemp("cluster-clone")
    fresh_clone(folder)
    for name in ("slurm", ".hooks"):
        shutil.copytree(REPO / name, folder / name)
    (folder / ".venv").symlink_to(os.path.dirname(os.path.dirname(sys.executable)))
    return folder


def submit(slurm, clone, *options, settings=SAMPLE_RUN):
    """The job id of slurm/train.sbatch submitted from the clone, as a learner submits it."""
    return slurm.run("sbatch", "--parsable", *SMALL_JOB, *options,
                     f"--export=ALL,{settings}", "slurm/train.sbatch", cwd=clone)


def when_epoch_one_is_saved(clone, job, network="mnist"):
    saved_state = clone / "outputs" / f"slurm-{job}" / f"{network}_training.pt"
    deadline = time.monotonic() + 60
    while not saved_state.exists():
        assert time.monotonic() < deadline, output_of(clone, job)
        time.sleep(0.02)


def output_of(clone, job, name="mnistlab"):
    return (clone / f"slurm-{name}-{job}.out").read_text()


def finished(slurm, clone, job, name="mnistlab", network="mnist"):
    """The job's output, once it has ended, and the network it saved."""
    slurm.wait_for(job, "JobState", {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, 120)
    output = output_of(clone, job, name)
    assert slurm.job(job, "JobState") == "COMPLETED", output
    saved = clone / "outputs" / f"slurm-{job}" / f"{network}_cnn.pt"
    return output, torch.load(saved, weights_only=True)["weights"]


def test_a_job_warned_of_its_time_limit_requeues_itself_and_ends_as_an_uncut_run(slurm, clone):
    uncut, cut = submit(slurm, clone), submit(slurm, clone)
    when_epoch_one_is_saved(clone, cut)
    # What --signal=USR1@90 sends the job's steps 90 s before its time limit.
    slurm.run("scancel", "--signal=USR1", cut)
    slurm.wait_for(cut, "Restarts", {"1"})
    (uncut_output, uncut_network), (cut_output, cut_network) = (
        finished(slurm, clone, uncut), finished(slurm, clone, cut))
    assert "Stopped by SIGUSR1 (the warning before the job's time limit) in epoch " in cut_output
    assert "Exited with exit code 75" in cut_output
    assert f"Job {cut}: the time limit is near; requeueing it" in cut_output
    assert 'srun\'s "exit code 75" above is this planned stop.' in cut_output
    assert "times requeued: 1;" in cut_output and "Resuming the run in " in cut_output
    results = [RESULT.search(output)["accuracy"] for output in (uncut_output, cut_output)]
    print(f"Test accuracy: {results[0]} % uncut, {results[1]} % requeued after epoch 1")
    assert results[0] == results[1], results
    assert all(torch.equal(uncut_network[name], cut_network[name]) for name in uncut_network)


# Lesson three's job as two tasks on the one node, each a launcher of one rank: two ranks that
# meet at a rendezvous on the job's first node, as two nodes of one GPU each would.
TWO_TASKS = ["--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=0", "--cpus-per-task=1",
             "--mem=2G"]


# Rank 1, the second task's, ends two seconds after it exits, as a rank on a loaded node or one
# letting go of a GPU does: the first task's launcher, which hosts the rendezvous, has ended by
# then, and the second's goes on waiting for its rank.
SLOWER_TO_END = """import atexit, os, time
if os.environ.get("RANK") == "1":
    atexit.register(time.sleep, 2)
"""


def test_lesson_three_on_two_tasks_requeued_at_its_time_limit_ends_as_an_uncut_run(
        slurm, clone, two_ranks_run, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(SLOWER_TO_END)
    settings = ",".join(f"{name}={value}" for name, value in {
        **RANKS_RUN, "MNISTLAB_RANKS": "1", "PYTHONPATH": tmp_path}.items())
    cut = slurm.run("sbatch", "--parsable", *TWO_TASKS, f"--export=ALL,{settings}",
                    "slurm/ddp.sbatch", cwd=clone)
    output = clone / f"slurm-mnistlab-ddp-{cut}.out"
    when_epoch_one_is_saved(clone, cut, "ddp")
    slurm.run("scancel", "--signal=USR1", cut)  # to every process of the job, ranks and all
    slurm.wait_for(cut, "Restarts", {"1"}, 120, output=output)
    cut_output, cut_network = finished(slurm, clone, cut, "mnistlab-ddp", "ddp")
    first_start = cut_output[:cut_output.index("times requeued: 1;")]
    assert "launchers: 2, each starting 1 of the ranks, meeting at " in first_start
    assert "2 ranks, talking through gloo, each on cpu" in first_start
    assert "Stopped by SIGUSR1 (the warning before the job's time limit) in epoch " in first_start
    exits = sorted(re.findall(r"tasks? ([\d-]+): Exited with exit code (\d+)", first_start))
    assert exits in ([("0-1", "75")], [("0", "75"), ("1", "75")]), first_start  # both, as planned
    assert "Traceback" not in cut_output and "rank " not in first_start.replace("2 rank", "")
    assert "Resuming the run in " in cut_output[len(first_start):]
    assert "The 2 replicas' weights are equal: True" in cut_output
    # It ends where the same two ranks end uncut, started by torchrun on this machine.
    uncut = two_ranks_run.finished.stdout
    results = [RESULT.search(said)["accuracy"] for said in (uncut, cut_output)]
    print(f"Lesson three's test accuracy: {results[0]} % uncut, {results[1]} % requeued")
    assert results[0] == results[1], results
    uncut_network = torch.load(two_ranks_run.out_dir / "ddp_cnn.pt", weights_only=True)["weights"]
    assert all(torch.equal(uncut_network[name], cut_network[name]) for name in uncut_network)


def test_sigterm_from_slurm_stops_the_lesson_after_its_batch_and_slurm_requeues_it(slurm, clone):
    job = submit(slurm, clone)
    when_epoch_one_is_saved(clone, job)
    asked = time.monotonic()
    slurm.run("scontrol", "requeue", job)  # as a preemption does: SIGTERM, then requeued
    while "Exited with exit code" not in output_of(clone, job):
        assert time.monotonic() - asked < 60, output_of(clone, job)
        time.sleep(0.05)
    print(f"The lesson ended {time.monotonic() - asked:.1f} s after Slurm's SIGTERM")
    output = output_of(clone, job)
    # By itself, with SIGTERM's status: Slurm's SIGKILL comes only after KillWait, 30 s.
    assert "Exited with exit code 143" in output and "Stopped by SIGTERM in epoch " in output
    assert slurm.job(job, "Restarts") == "1" and "Traceback" not in output
    slurm.run("scancel", job)


def sleeping_job(slurm, cwd, *options):
    """The id of a running job that only holds its share of the node, as one held for VS Code."""
    job = slurm.run("sbatch", "--parsable", "--cpus-per-task=1", "--mem=100M", *options,
                    "--wrap", "sleep 120", cwd=cwd)
    slurm.wait_for(job, "JobState", {"RUNNING"})
    return job


def doctor(slurm, clone, *command):
    answer = subprocess.run([*command, ".venv/bin/python", "mnistlab.py", "--doctor"], cwd=clone,
                            env=slurm.environment, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def test_the_doctor_knows_a_job_a_node_with_your_job_and_a_login_node(slurm, clone):
    inside = doctor(slurm, clone, "srun", "--cpus-per-task=1", "--mem=500M", "--time=5")
    assert "on node " in inside and ": 1 CPU, 500M of memory, no GPU; " in inside
    assert "In this job the lesson trains on the CPU with up to 1 thread: the job has no GPU" \
        in inside
    assert "CPU threads: 1 usable here" in inside
    outside = doctor(slurm, clone)
    assert f"Slurm: {slurm.node} is a login node (Slurm answers, and this shell is in no job)" \
        in outside and "sbatch slurm/train.sbatch" in outside
    sleeping = sleeping_job(slurm, clone)
    beside = doctor(slurm, clone)
    assert f"Slurm: your job {sleeping} runs on this node ({slurm.node}), but this shell is " \
           f"outside it" in beside
    assert f"srun --jobid {sleeping} --overlap --pty bash" in beside
    slurm.run("scancel", sleeping)


def test_the_lesson_run_on_a_login_node_says_where_to_train(slurm, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm.environment["SLURM_CONF"])
    *_, note = short_report()  # what the lesson's device cell prints under its first line
    assert note.startswith(f"Slurm: {slurm.node} is a login node") and "salloc" in note
    monkeypatch.setenv("SLURM_JOB_ID", "7")  # in a job, the device line says it all
    assert len(short_report()) == 3


def test_a_job_submitted_from_elsewhere_is_told_where_to_submit_it(slurm, clone, tmp_path):
    job = slurm.run("sbatch", "--parsable", *SMALL_JOB, str(clone / "slurm" / "train.sbatch"),
                    cwd=tmp_path)
    slurm.wait_for(job, "JobState", {"FAILED"})
    said = (tmp_path / f"slurm-mnistlab-{job}.out").read_text()
    assert said.strip() == ("mnistlab: submit the job from the repository's folder: cd "
                            "~/mnistlab && sbatch slurm/train.sbatch")
    assert slurm.job(job, "ExitCode") == "2:0"


def test_a_job_whose_folder_can_save_nothing_fails_before_training(slurm, clone, tmp_path):
    with tmpfs(tmp_path / "read-only", "1m") as folder:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        job = submit(slurm, clone, settings=f"{SAMPLE_RUN},MNISTLAB_OUT_DIR={folder}")
        slurm.wait_for(job, "JobState", {"COMPLETED", "FAILED"}, 120)
    output = output_of(clone, job)
    assert slurm.job(job, "JobState") == "FAILED" and slurm.job(job, "ExitCode") == "2:0"
    assert "mnistlab: --resume: nothing can be saved in " in output
    assert "(Read-only file system)" in output and "epoch 1" not in output


def test_the_batch_script_never_names_a_blank_folder(clone, tmp_path):
    """Outside Slurm, with the variables a job has, and a stand-in srun that shows what the
    lesson would be given."""
    (tmp_path / "srun").write_text(
        '#!/bin/sh\necho "lesson gets MNISTLAB_OUT_DIR=[$MNISTLAB_OUT_DIR]"\n')
    (tmp_path / "srun").chmod(0o755)
    job = {"SLURM_SUBMIT_DIR": str(clone), "SLURM_JOB_ID": "77", "SLURM_JOB_NAME": "mnistlab",
           "SLURMD_NODENAME": "node1", "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for given, folder in [(" ", "outputs/slurm-77"), ("", "outputs/slurm-77"),
                          ("outputs/slurm-76", "outputs/slurm-76")]:
        ran = subprocess.run(["bash", str(clone / "slurm" / "train.sbatch")], capture_output=True,
                             text=True, env={**os.environ, **job, "MNISTLAB_OUT_DIR": given})
        assert ran.returncode == 0, ran.stderr
        assert f"results go to {folder}\n" in ran.stdout and f"results in {folder}\n" in ran.stdout
        assert f"lesson gets MNISTLAB_OUT_DIR=[{folder}]" in ran.stdout


# The data, fetched on the login node for compute nodes that have no internet.

def test_get_data_downloads_and_checks_the_files_then_stops(tmp_path, mirror):
    got = run_lesson("--get-data", "--mirror", mirror, "--data-dir", "shared", cwd=tmp_path,
                     environment=lesson_environment(tmp_path / "outputs"))
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "MNIST is whole in shared/MNIST/raw: the lesson will read it " \
                                 "from there."
    assert (tmp_path / "shared" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    assert not (tmp_path / "outputs").exists()  # nothing trained, nothing drawn


def test_get_data_without_internet_says_where_to_run_it(tmp_path):
    got = run_lesson("--get-data", "--mirror", "http://127.0.0.1:9/", "--data-dir", "data",
                     cwd=tmp_path,
                     environment=lesson_environment(tmp_path / "outputs"))
    assert_plain_stop(got, "could not download MNIST into data/MNIST", "the login node",
                      "--mirror")
    assert not list((tmp_path / "data" / "MNIST" / "raw").glob("*"))


# VS Code on a compute node: the laptop's helper asks the login node for the job's node.

def vscode_node():
    spec = importlib.util.spec_from_file_location("vscode_node", REPO / "slurm" / "vscode_node.py")
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    return helper


def test_the_vscode_helper_writes_your_jobs_node_into_the_ssh_config(slurm, tmp_path):
    (tmp_path / "ssh").mkdir()
    (tmp_path / "etc-slurm").mkdir()
    shutil.copy(slurm.environment["SLURM_CONF"], tmp_path / "etc-slurm" / "slurm.conf")
    with Server(tmp_path / "ssh") as login:
        # The laptop (this namespace's home) logs in to the login node (sshd on 127.0.0.1) with a
        # key, and the login node's Slurm commands find the cluster in /etc/slurm/slurm.conf.
        made = login.inside(
            f"mount --bind {tmp_path / 'etc-slurm'} /etc/slurm && mkdir -p ~/.ssh && "
            f"ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519 && "
            f"cp ~/.ssh/id_ed25519.pub ~/.ssh/authorized_keys && "
            f"ssh-keyscan -p {login.port} 127.0.0.1 > ~/.ssh/known_hosts 2>/dev/null && "
            f"printf 'Host mnist-server\\n HostName 127.0.0.1\\n Port {login.port}\\n User "
            f"root\\n' > ~/.ssh/config && chmod 600 ~/.ssh/config")
        assert made.returncode == 0, made.stderr
        helper = f"{sys.executable} {REPO / 'slurm' / 'vscode_node.py'} mnist-server"
        too_soon = login.inside(helper)
        assert (too_soon.returncode, too_soon.stdout) == (2, ""), too_soon.stderr
        assert too_soon.stderr.startswith("vscode_node: you have no running job on mnist-server")
        assert "Traceback" not in too_soon.stderr
        jobs = [sleeping_job(slurm, tmp_path, *name) for name in (["--job-name=vscode"], [])]
        # A block written by hand, as an older page said to, and a pattern above that would win.
        for hand_written, said in [
                ("Host mnist-node\\n HostName old-node\\n", "that this script did not write"),
                ("Host mnist-*\\n HostName old-node\\n", "ssh would still take mnist-node to "
                                                          "old-node")]:
            login.inside(f"cp ~/.ssh/config ~/plain && printf '{hand_written}' >> ~/.ssh/config")
            kept = login.inside("cat ~/.ssh/config").stdout
            refused = login.inside(helper)
            assert (refused.returncode, refused.stdout) == (2, "") and said in refused.stderr
            assert login.inside("cat ~/.ssh/config").stdout == kept  # as it was
            assert "hostname old-node" in login.inside("ssh -G mnist-node").stdout
            login.inside("mv ~/plain ~/.ssh/config")  # the learner does as the message says
        for _ in range(2):  # the second run rewrites its block, and adds none
            wrote = login.inside(helper)
            assert wrote.returncode == 0, wrote.stderr
        assert wrote.stdout.startswith(f"mnist-node is now {slurm.node}, the node of your job "
                                       f"{jobs[0]}, through mnist-server")
        config = login.inside("cat ~/.ssh/config").stdout
        assert config.startswith("Host mnist-server\n") and config.count("Host mnist-node") == 1
        assert login.inside("stat -c %a ~/.ssh/config").stdout.strip() == "600"
        shown = login.inside("ssh -G mnist-node").stdout.splitlines()
        assert {f"hostname {slurm.node}", "proxyjump mnist-server", "user root"} <= set(shown)
    for job in jobs:
        slurm.run("scancel", job)


def test_the_vscode_helper_takes_only_the_job_meant_for_vscode():
    helper = vscode_node()
    jobs = helper.running_jobs("13|gpu03|train\n12|gpu07|vscode\n11|gpu05|my run\n")
    assert helper.node_of(jobs) == ("12", "gpu07")
    assert helper.node_of(jobs, "13") == ("13", "gpu03")  # named by its number
    assert helper.node_of(jobs, "my run") == ("11", "gpu05")  # a name with a space
    assert helper.node_of(helper.running_jobs("13|gpu03|train\n")) is None  # never a training job
    assert helper.node_of(helper.running_jobs("14|gpu[01-02]|vscode\n")) == ("14", None)
    assert helper.node_of([]) is None


def test_the_vscode_helper_names_the_jobs_it_passed_over(tmp_path):
    passed_over = run_helper(tmp_path, "--config", str(tmp_path / "config"),
                             squeue="13|gpu03|train")
    assert (passed_over.returncode, passed_over.stdout) == (2, "")
    assert passed_over.stderr == (
        "vscode_node: you have no running job named or numbered vscode on mnist-server, only 13 "
        "(train). Start one there first, such as: salloc --job-name=vscode --cpus-per-task=4 "
        "--mem=8G --time=2:00:00, or name yours: --job NUMBER\n")
    assert not (tmp_path / "config").exists()
    named = run_helper(tmp_path, "--config", str(tmp_path / "config"), "--job", "13",
                       squeue="13|gpu03|train")
    assert named.returncode == 0 and "mnist-node is now gpu03, the node of your job 13" in \
        named.stdout


HAND_WRITTEN = ('Host mnist-server\n    HostName login.example.org\n'
                '    IdentityFile "~/.ssh/id ed"\n')
OTHER = "Host other\n    HostName o.example.org\n"


def config_with_node(helper, config, node="gpu07"):
    return helper.with_block(config, helper.node_block(node, "mnist-server", "alice",
                                                      ["~/.ssh/id ed25519"]))


def test_the_vscode_helper_keeps_the_config_and_quotes_what_it_writes():
    helper = vscode_node()
    once = config_with_node(helper, HAND_WRITTEN)
    assert once.startswith(HAND_WRITTEN)  # to the byte, quotes and all
    assert '    IdentityFile "~/.ssh/id ed25519"\n' in once
    again = config_with_node(helper, once + OTHER, "gpu08")
    assert again.count("Host mnist-node") == 1 and "gpu08" in again and "gpu07" not in again
    assert again.endswith(OTHER)


def test_the_vscode_helper_keeps_a_windows_config_s_line_ends(tmp_path):
    (tmp_path / "config").write_bytes(HAND_WRITTEN.replace("\n", "\r\n").encode())
    wrote = run_helper(tmp_path, "--config", str(tmp_path / "config"))
    assert wrote.returncode == 0, wrote.stderr
    written = (tmp_path / "config").read_bytes()
    assert written.startswith(HAND_WRITTEN.replace("\n", "\r\n").encode())
    assert written.count(b"\n") == written.count(b"\r\n")  # every line, ours too


@pytest.mark.parametrize("marker", ["END", "START"])
def test_the_vscode_helper_replaces_its_block_with_a_marker_deleted(marker):
    helper = vscode_node()
    once = config_with_node(helper, HAND_WRITTEN) + OTHER
    damaged = once.replace(getattr(helper, marker) + "\n", "")
    again = config_with_node(helper, damaged, "gpu08")
    assert again.count("Host mnist-node") == 1 and "gpu07" not in again
    assert again.startswith(HAND_WRITTEN) and again.endswith(OTHER)


def test_the_vscode_helper_refuses_a_hand_written_mnist_node_block(capsys):
    helper = vscode_node()
    with pytest.raises(SystemExit) as stopped:
        config_with_node(helper, "Host mnist-node\n    HostName gpu01\n" + HAND_WRITTEN)
    assert stopped.value.code == 2
    assert "already has a Host mnist-node block that this script did not write (line 1)" in \
        capsys.readouterr().err


# As the real ssh answers: -G names the user, the key, and the first HostName of a Host block
# that names the host; otherwise it runs the command (squeue) on the login node.
STAND_IN_SSH = """#!{python}
import re, sys
if sys.argv[1] != "-G":
    sys.exit(print({squeue!r}))
print("user alice\\nidentityfile {key}")
config = open(sys.argv[sys.argv.index("-F") + 1]).read() if "-F" in sys.argv else ""
block = re.search(r"^Host (?:.* )?mnist-node\\b.*\\n((?:(?!Host ).*\\n)*)", config, re.M | re.I)
found = block and re.search(r"^\\s*HostName\\s+(\\S+)", block.group(1), re.M | re.I)
print(f"hostname {{found.group(1) if found else 'mnist-node'}}")
"""


def run_helper(tmp_path, *arguments, squeue="12|gpu07|vscode", without_rights=False):
    """vscode_node.py with a stand-in ssh on PATH: it answers squeue with `squeue`, and -G as
    the real one does for a Host with a user and a key."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "id ed25519").touch()
    ssh = tmp_path / "bin" / "ssh"
    ssh.write_text(STAND_IN_SSH.format(python=sys.executable, key=tmp_path / "id ed25519",
                                       squeue=squeue))
    ssh.chmod(0o755)
    user = as_a_user_without_rights() if without_rights else []
    return subprocess.run([*user, sys.executable, str(REPO / "slurm" / "vscode_node.py"),
                           "mnist-server", *arguments], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})


def test_the_vscode_helper_writes_through_a_link_and_names_what_it_cannot_use(tmp_path):
    (tmp_path / "dotfiles").mkdir()
    real = tmp_path / "dotfiles" / "ssh_config"
    real.write_text(HAND_WRITTEN)
    real.chmod(0o600)
    (tmp_path / "config").symlink_to(real)
    wrote = run_helper(tmp_path, "--config", str(tmp_path / "config"))
    assert wrote.returncode == 0, wrote.stderr
    assert (tmp_path / "config").is_symlink() and oct(real.stat().st_mode)[-3:] == "600"
    assert f'IdentityFile "{tmp_path}/id ed25519"' in real.read_text()
    odd = run_helper(tmp_path, "--config", str(tmp_path / "config"),
                     squeue="12|gpu07;rm -rf ~|vscode")
    assert odd.returncode == 2 and "'gpu07;rm -rf ~' as the node of job 12, which is not a " \
        "host name" in odd.stderr
    os.mkfifo(tmp_path / "fifo")
    piped = run_helper(tmp_path, "--config", str(tmp_path / "fifo"))
    assert piped.returncode == 2 and "is not a regular file" in piped.stderr
    real.chmod(0)
    unreadable = run_helper(tmp_path, "--config", str(tmp_path / "config"), without_rights=True)
    assert (unreadable.returncode, unreadable.stdout) == (2, "")
    assert unreadable.stderr.startswith(f"vscode_node: cannot read {tmp_path / 'config'} "
                                        f"(Permission denied)"), unreadable.stderr


# The lesson's side, without Slurm: a terminal run sent the signals Slurm sends.

@pytest.mark.parametrize("number, saved_epochs, status", [
    (signal.SIGUSR1, 1, 75), (signal.SIGUSR1, 0, 2), (signal.SIGTERM, 1, 143),
    (signal.SIGTERM, 0, 143)])
def test_a_signal_ends_the_run_after_its_batch_with_a_status_for_the_batch_script(
        tmp_path, capsys, number, saved_epochs, status):
    before = signal.getsignal(number)
    with pytest.raises(SystemExit) as ended, training_run(tmp_path, epochs=3) as run:
        for epoch in run.epochs():
            if epoch > saved_epochs:
                os.kill(os.getpid(), number)
            run.end_epoch(epoch, [0.5], 90.0)
    assert ended.value.code == status
    assert signal.getsignal(number) == before  # given back as it was
    said = capsys.readouterr()
    assert f"Stopped by {STOP_SIGNALS[number]} in epoch {saved_epochs + 1} of 3" in said.out
    assert (tmp_path / "mnist_training.pt").exists() == (saved_epochs > 0)
    if status == 2:
        assert "the job's time ran out before epoch 1 finished" in said.err


def test_the_time_limit_warning_outside_training_leaves_the_run_alone():
    # Say, as the run draws its figures and saves its network: it ends well before the limit.
    program = ("import os, signal, mnistlab_tools as tools\ntools.set_up_terminal()\n"
               "os.kill(os.getpid(), signal.SIGUSR1)\nprint('went on')")
    ran = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "went on\n"), ran.stderr


def test_the_cores_follow_the_jobs_share():
    machine = usable_cores({})
    assert usable_cores({"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "1"}) == 1
    assert usable_cores({"SLURM_JOB_ID": "7", "SLURM_JOB_CPUS_PER_NODE": "1(x2)"}) == 1
    assert usable_cores({"SLURM_JOB_CPUS_PER_NODE": "1"}) == machine  # no job: not ours
    assert usable_cores({"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "512"}) == machine


def test_a_shell_that_holds_a_job_on_the_login_node_is_told_to_use_srun():
    (line,) = cluster_lines({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "gpu07"})
    assert "this shell holds job 7, but runs on " in line and "not on the job's node gpu07" in line
    assert line.endswith("srun --pty bash")


def test_a_job_with_a_gpu_is_told_which_cuda_number_it_has():
    lines = cluster_lines({"SLURM_JOB_ID": "7", "SLURMD_NODENAME": "gpu07",
                                 "SLURM_JOB_NAME": "mnistlab", "SLURM_CPUS_PER_TASK": "4",
                                 "SLURM_JOB_GPUS": "2", "CUDA_VISIBLE_DEVICES": "0"})
    assert lines[0].startswith("Slurm job 7 (mnistlab) on node gpu07: 4 CPUs, ")
    assert ", GPUs 2; " in lines[0]
    assert lines[1].startswith("In this job the lesson trains on the job's GPU, cuda:0 "
                               "(CUDA_VISIBLE_DEVICES='0'), where the GPU lines above show")
    threads = min(len(os.sched_getaffinity(0)), 4)  # the job's 4, where this machine has them
    assert lines[1].endswith(f"and otherwise on the CPU with up to {threads} thread" +
                             "s" * (threads > 1))


def test_a_job_id_left_from_an_ended_job_is_not_taken_for_a_running_job(slurm, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm.environment["SLURM_CONF"])
    gone = "987654"  # a job this cluster no longer knows, as it forgets every ended one
    lines = cluster_lines({"SLURM_JOB_ID": gone, "SLURMD_NODENAME": slurm.node,
                           "SLURM_CPUS_PER_TASK": "4"})
    assert lines[0].startswith(f"Slurm: SLURM_JOB_ID={gone} is left in this shell from a job "
                               f"that has ended")
    assert "unset ${!SLURM_@}" in lines[0] and "?" not in " ".join(lines)
    assert lines[1].startswith(f"Slurm: {slurm.node} is a login node")


def test_a_job_of_several_nodes_is_told_where_lesson_three_s_ranks_would_run(
        slurm, monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_CONF", slurm.environment["SLURM_CONF"])  # scontrol names the nodes
    # A running job's variables, as a job of two nodes with two GPUs each would have them.
    job = {"SLURM_JOB_ID": sleeping_job(slurm, tmp_path), "SLURMD_NODENAME": "gpu01",
           "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS": "2",
           "SLURM_JOB_GPUS": "0,1"}
    assert cluster_lines(job)[-1] == (
        "Lesson three in this job (sbatch slurm/ddp.sbatch): 2 launchers, one in each task, on "
        "gpu01 and gpu02, each starting 2 ranks, one for each GPU of its node: 4 in all, meeting "
        "at a rendezvous on gpu01, the job's first node")
    on_cpus = cluster_lines({**job, "SLURM_JOB_GPUS": ""})[-1]
    assert "each starting `ranks` CPU processes (2, or MNISTLAB_RANKS)" in on_cpus
    one_gpu = {**job, "SLURM_JOB_NODELIST": "gpu01", "SLURM_JOB_NUM_NODES": "1",
               "SLURM_NTASKS": "1", "SLURM_JOB_GPUS": "3"}
    assert "Lesson three" not in " ".join(cluster_lines(one_gpu))  # lesson one's job: no line
    slurm.run("scancel", job["SLURM_JOB_ID"])
