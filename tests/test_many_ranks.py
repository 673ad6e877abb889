"""Lesson three, ddp.py, started as torchrun starts it on one machine, and as a plain program that
starts its own ranks: two CPU processes talking through gloo. Only rank 0 prints and writes; the
replicas end equal; Ctrl-C and SIGTERM end every rank after the same batch; a killed rank ends
the others within seconds; a wrong launch, a rendezvous that fails and more ranks than GPUs are
said in one line. (Its Slurm job, requeued and resumed, is in test_cluster.py.)"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lesson_runs import REPO, lesson_environment
from real_systems import free_port
from run_outputs import assert_plain_stop
from torch.distributed.elastic.rendezvous.api import RendezvousConnectionError

from mnistlab_tools.device import ranks_beyond_the_gpus
from mnistlab_tools.ranks import LOST_A_RANK, failure_line, rendezvous_line


def test_two_ranks_train_as_one_and_rank_0_alone_speaks_and_writes(two_ranks_run):
    said = two_ranks_run.finished.stdout
    assert "2 ranks, talking through gloo, each on cpu" in said
    assert said.count("epoch 1: training loss") == 1 and said.count("epoch 4: ") == 1  # rank 0
    assert "The 2 replicas' weights are equal: True" in said
    assert "Saved the network to " in said and "on 500 sample test digits" in said
    files = sorted(path.name for path in two_ranks_run.out_dir.iterdir())
    assert files == [".mnistlab-training.lock", "batch_over_ranks.png", "ddp_cnn.pt",
                     "ddp_training.pt"]
    # Started as a plain program, it starts the same ranks and ends with the same weights: the
    # Slurm job in tests/test_cluster.py, started so, is compared with this run.


def started(tmp_path, *options):
    """`python ddp.py --ranks 2 --sample OPTIONS` in a terminal of its own, as a learner starts
    it; its ranks are its children."""
    environment = {**lesson_environment(tmp_path / "out"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "ddp.py"), "--ranks", "2", "--sample",
                             *options], cwd=tmp_path, env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def after_line(process, prefix, seconds=120):
    """Read what it prints until a line that starts with `prefix`."""
    deadline, said = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        said.append(line)
        if not line or line.startswith(prefix):
            break
    assert said[-1].startswith(prefix), "".join(said)
    return "".join(said)


def messages(errors):
    """The lines of a run's standard error, rank 0's progress bars aside."""
    return [line for line in errors.replace("\r", "\n").splitlines()
            if line.strip() and "batch/s]" not in line]


def rank_process(out_dir, rank):
    """The process of rank `rank` of the run that saves into out_dir."""
    for folder in Path("/proc").iterdir():
        try:
            environ = (folder / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and \
                f"MNISTLAB_OUT_DIR={out_dir}".encode() in environ:
            return int(folder.name)
    return None


@pytest.mark.parametrize("number, said, status, to_rank_1_alone", [
    (signal.SIGINT, "Ctrl-C", 130, False), (signal.SIGTERM, "SIGTERM", 143, False),
    (signal.SIGUSR1, r"SIGUSR1 \(the warning before the job's time limit\)", 75, True)])
def test_a_stop_ends_every_rank_after_the_same_batch_in_one_line(tmp_path, number, said, status,
                                                                 to_rank_1_alone):
    launcher = started(tmp_path, "--epochs", "300")
    after_line(launcher, "epoch 1: training loss")  # epoch 1 saved, to go on from
    if to_rank_1_alone:
        # A signal may reach one rank only, or a batch before the others (on a cluster, one
        # node's): rank 0 never had it, and stops as rank 1 does, and says why.
        os.kill(rank_process(tmp_path / "out", 1), number)
    else:
        # Ctrl-C reaches the launcher and every rank; a batch system's SIGTERM, every process too.
        os.killpg(launcher.pid, number)
    output, errors = launcher.communicate(timeout=120)
    assert launcher.returncode == status and "Traceback" not in errors, errors
    assert re.search(rf"Stopped by {said} (in|as) epoch \d+ of 300", output), output
    assert messages(errors) == []  # each rank's line said it all, and torchrun says nothing
    if number == signal.SIGINT:  # the lesson goes on to its end
        assert "The 2 replicas' weights are equal: True" in output  # they stopped together
    assert (tmp_path / "out" / "ddp_training.pt").is_file()


def test_a_killed_rank_stops_the_others_in_seconds_and_is_named(tmp_path):
    launcher = started(tmp_path, "--epochs", "300")
    after_line(launcher, "epoch 1:")
    victim = rank_process(tmp_path / "out", 1)
    assert victim, "rank 1 was not found"
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    _, errors = launcher.communicate(timeout=120)
    assert time.monotonic() - killed < 60  # not NCCL's thirty minutes
    assert launcher.returncode == 2 and "Traceback" not in errors, errors
    assert messages(errors) == [
        "mnistlab: rank 1 of 2 was killed by signal SIGKILL, and the others were stopped with it "
        "(its own message, if it left one, is above). What the last finished epoch saved stays "
        "for --resume."], errors


def test_the_rank_named_is_the_one_that_died_not_one_that_stopped_with_it():
    """What each launcher of a run over two machines says when rank 1, on the second, is killed:
    rank 0, on the first, stopped when its exchange with rank 1 broke (as ddp.py ends then)."""
    def ended(exitcode, timestamp):
        return SimpleNamespace(exitcode=exitcode, timestamp=timestamp)

    first_machine = {0: ended(LOST_A_RANK, 100)}
    second_machine = {1: ended(-signal.SIGKILL, 101)}
    assert failure_line(first_machine, 2).startswith(
        "a rank on another machine was lost, and the rank here stopped with it: that machine's "
        "output names it")
    assert failure_line(second_machine, 2).startswith("rank 1 of 2 was killed by signal SIGKILL")
    # On one machine, the rank that stopped first is not the cause, nor those torchrun ended.
    one_machine = {0: ended(LOST_A_RANK, 100), 1: ended(-signal.SIGKILL, 101),
                   2: ended(-signal.SIGTERM, 99)}
    assert failure_line(one_machine, 3).startswith("rank 1 of 3 was killed by signal SIGKILL")


@pytest.mark.parametrize("options, said", [
    (["--ranks", "two"], "--ranks: 'two' is not allowed: use a whole number from 1"),
    (["--nodes", "2"], "--nodes 2 needs a --rendezvous HOST:PORT where the machines meet"),
    (["--rendezvous", "node01"], "--rendezvous: 'node01' is not allowed: use HOST:PORT"),
    (["--nodes", "2", "--rendezvous", "node-that-is-not.invalid:29500"],
     "no machine is called node-that-is-not.invalid from here"),
])
def test_a_wrong_launch_is_refused_in_one_line(tmp_path, options, said):
    finished = subprocess.run([sys.executable, str(REPO / "ddp.py"), *options], cwd=tmp_path,
                              env=lesson_environment(tmp_path / "out"), capture_output=True,
                              text=True, timeout=120)
    assert_plain_stop(finished, said)
    assert os.listdir(tmp_path) == []  # nothing written


def test_a_rendezvous_port_taken_by_another_program_is_said_at_once(tmp_path):
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        # The first task of a Slurm job hosts the rendezvous, as slurm/ddp.sbatch starts it.
        finished = subprocess.run(
            [sys.executable, str(REPO / "ddp.py"), "--sample", "--nodes", "2", "--rendezvous",
             f"127.0.0.1:{port}"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**lesson_environment(tmp_path / "out"), "SLURM_PROCID": "0"})
    assert_plain_stop(finished, f"port {port} on 127.0.0.1 is taken by another program",
                      "--rendezvous 127.0.0.1:PORT")
    assert os.listdir(tmp_path) == []


def test_a_rendezvous_that_never_answers_is_said_with_what_to_check():
    """The line a launcher ends in where the first machine never answers: the real error of a
    store that no one hosts, whose wait would take the test minutes in the launcher."""
    from datetime import timedelta

    from torch.distributed import TCPStore

    with pytest.raises(RuntimeError) as failed:
        TCPStore("127.0.0.1", free_port(), is_master=False, timeout=timedelta(seconds=1))
    error = RendezvousConnectionError("The connection to the C10d store has failed.")
    error.__cause__ = failed.value
    line = rendezvous_line("node01:29500", error, 2, 121.4)
    assert line.startswith("the 2 machines did not all meet at the rendezvous node01:29500, "
                           "waited for 121 s. The first machine, node01, must have started")
    assert "ping node01" in line and "firewall" in line


def test_more_ranks_than_gpus_is_said_before_any_starts(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert ranks_beyond_the_gpus("auto", 2) is None and ranks_beyond_the_gpus("cpu", 8) is None
    assert ranks_beyond_the_gpus("cuda", 3) == (
        "3 ranks on this machine are more than its 2 GPUs, and each rank trains on a GPU of its "
        "own. Start 2 (--ranks 2, or torchrun --nproc-per-node=2), or train in CPU processes "
        "with --device cpu.")
