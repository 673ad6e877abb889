"""What a learner's neighbours and machine can do to a run: another user's links in a folder you
share, a second run in the same folder, a signal at an epoch's end, a full or read-only disk, a
folder removed under the run, a pipe where a file should be, and values in range that would
still do harm. Each ends in its real cause, and nothing of the learner's is lost."""

import errno
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_data import write_mnist_like
from lesson_runs import (
    HANDWRITING_NOTEBOOK,
    SCRIPT,
    StartedLesson,
    lesson_environment,
    lesson_parameters,
    offline,
    run_lesson,
    training_run,
)
from real_systems import tmpfs
from run_outputs import assert_plain_stop

import mnistlab_saved as saved
import mnistlab_tools as tools
from mnistlab_tools.data import DATASETS, data_folder, data_problems, why_no_download
from mnistlab_tools.files import (HERE, LOCK_NAME, new_folder, remove_leftovers, save_file,
                                  training_alone)
from mnistlab_tools.saved import machine_note

DIGITS = [str(digit) for digit in range(10)]


# Files written in a folder others may write

def test_links_planted_at_the_names_a_file_is_written_through_are_never_followed(tmp_path,
                                                                                 monkeypatch):
    """Another member of the group plants links at the partial file's name, as the scheme would
    draw it, and at the file's own name: the victim's files stay as they were."""
    victim = tmp_path / "notes.txt"
    victim.write_text("my notes")
    draws = iter(["planted", "planted"])  # then names drawn as usual
    token_hex = secrets.token_hex
    monkeypatch.setattr("mnistlab_tools.files.secrets.token_hex",
                        lambda size: next(draws, None) or token_hex(size))
    (tmp_path / f".sample_digits.png.{os.getpid()}.planted.partial").symlink_to(victim)
    (tmp_path / f".sample_digits.png.{os.getpid()}.partial").symlink_to(victim)  # the old scheme
    (tmp_path / "mnist_cnn.pt").symlink_to(victim)
    assert save_file(tmp_path / "sample_digits.png", lambda file: file.write(b"a PNG"))
    assert tools.save_network(tmp_path / "mnist_cnn.pt", saved.DigitNet(), {"channels": 16},
                              DIGITS, 0.13, 0.31)
    assert victim.read_text() == "my notes"
    assert (tmp_path / "sample_digits.png").read_bytes() == b"a PNG"
    assert not (tmp_path / "mnist_cnn.pt").is_symlink()  # the link replaced, not written through
    tools.load_checkpoint(tmp_path / "mnist_cnn.pt", saved.DigitNet, "cpu")


def test_only_this_users_leftovers_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    names = {"mine": f".f.png.{dead}.a1.partial", "running": f".f.png.{os.getpid()}.b2.partial",
             "planted": f".f.png.{dead}.c3.partial", "others": f".f.png.{dead}.d4.partial"}
    for key, name in names.items():
        if key == "planted":
            (tmp_path / name).symlink_to(tmp_path / "elsewhere")
        else:
            (tmp_path / name).write_bytes(b"half")
    if os.geteuid() == 0:
        os.chown(tmp_path / names["others"], 65534, 65534)  # nobody's
    remove_leftovers(tmp_path / "f.png")
    left = {path.name for path in tmp_path.iterdir()}
    assert names["mine"] not in left and {names["running"], names["planted"]} <= left
    assert os.geteuid() != 0 or names["others"] in left


def test_a_partial_file_swapped_for_a_link_while_written_is_not_renamed_into_place(tmp_path,
                                                                                 capsys):
    victim = tmp_path / "notes.txt"
    victim.write_text("my notes")

    def swapped_while_written(file):  # as someone watching the folder would swap it
        file.write(b"half")
        os.unlink(file.name)
        os.symlink(victim, file.name)

    assert not save_file(tmp_path / "sample_digits.png", swapped_while_written)
    assert "someone replaced the file being written" in capsys.readouterr().out
    assert victim.read_text() == "my notes" and not (tmp_path / "sample_digits.png").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_a_download_into_a_shared_data_folder_replaces_planted_links(tmp_path, mirror):
    """Links at the names a download and its unpacking write, pointing where the victim has no
    file yet: written through, they would make one."""
    victim = tmp_path / "victim"
    victim.mkdir()
    raw_dir = tmp_path / "data" / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    for name in ("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte",
                 f".t10k-labels-idx1-ubyte.gz.{os.getpid()}.partial"):
        (raw_dir / name).symlink_to(victim / name)
    assert data_folder(DATASETS["mnist"], tmp_path / "data", False, mirror) == \
        tmp_path / "data"
    assert list(victim.iterdir()) == []
    assert not (raw_dir / "t10k-labels-idx1-ubyte").is_symlink()
    assert data_problems(raw_dir) == []


def test_tensorboards_folder_is_made_anew_where_a_link_was_planted(tmp_path):
    (tmp_path / "victim").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mnist-20261202-101500").symlink_to(tmp_path / "victim")
    made = new_folder(tmp_path / "runs", "mnist-20261202-101500")
    assert made.name == "mnist-20261202-101500-2" and made.is_dir() and not made.is_symlink()
    assert not made.stat().st_mode & 0o022  # nobody else may plant anything in it
    assert new_folder(tmp_path / "runs", "mnist-20261202-101500").name.endswith("-3")


# Two runs in one folder

def test_a_second_run_in_a_folder_where_one_trains_refuses_and_the_first_resumes(tmp_path,
                                                                                capsys):
    out_dir = tmp_path / "out"
    with StartedLesson("--sample", "--epochs", "1000", cwd=tmp_path, out_dir=out_dir) as first:
        # Epoch 2's line comes after epoch 1's training state is saved.
        first.printed_until("epoch 2:")
        with pytest.raises(SystemExit) as refused, training_run(out_dir, 2000, "--sample"):
            pass
        assert refused.value.code == 2
        message = capsys.readouterr().err.strip()
        assert message.startswith(f"mnistlab: process {first.pid} on ") and \
            "is training in " in message and "--out-dir (MNISTLAB_OUT_DIR)" in message
        assert len(message.splitlines()) == 1
        assert (out_dir / "mnist_training.pt").exists()  # the other's state is still there
        first.signal(signal.SIGTERM)
        status, rest, _ = first.finished(60)
    assert status == 143 and "--resume goes on after the last finished epoch" in rest
    saved_state = torch.load(out_dir / "mnist_training.pt", weights_only=True)
    assert saved_state["epoch"] >= 1 and saved_state["settings"]["epochs"] == 1000
    with training_run(out_dir, 2000, "--resume", epochs=1000):  # the first's, found and whole
        assert "Resuming the run in " in capsys.readouterr().out


def test_the_lock_stays_readable_to_the_group_whatever_the_umask(tmp_path):
    finished = subprocess.run(["sh", "-c", f"umask 077 && exec {sys.executable} {SCRIPT} --sample"],
                              cwd=tmp_path, env=lesson_environment(tmp_path / "shared"),
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    # Others open it to wait their turn: readable by all, writable by the group.
    assert (tmp_path / "shared" / LOCK_NAME).stat().st_mode & 0o777 == 0o664


def test_another_users_lock_that_cannot_be_opened_is_a_refusal_not_a_go_ahead(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # a folder the group writes in
    lock = shared / LOCK_NAME
    lock.write_text("")
    lock.chmod(0o600)
    os.chown(lock, 65534, 65534)  # the other user's, made before the lesson made it readable
    finished = run_lesson("--sample", cwd=tmp_path, environment=lesson_environment(shared),
                          without_rights=True)
    assert_plain_stop(finished, "the lock of another user's runs", "cannot be opened by you",
                      "chmod a+r", "--out-dir")
    assert sorted(path.name for path in shared.iterdir()) == [LOCK_NAME]  # nothing written


@pytest.mark.parametrize("holder, refused", [
    (None, False),  # no run has left a note: this one goes on, and says how runs are kept apart
    ("alive here", True),
    ("elsewhere", True),  # on a machine it cannot see
    ("gone", False),  # a process of this machine that has ended
])
def test_a_file_system_without_locks_goes_by_the_lock_files_note(tmp_path, monkeypatch, capsys,
                                                                 holder, refused):
    import fcntl

    process, host = {None: (None, None), "alive here": (os.getpid(), socket.gethostname()),
                     "elsewhere": (4242, "node-elsewhere"),
                     "gone": (2**22 + 1, socket.gethostname())}[holder]
    note = f"process {process} on {host}, started 10:15:00," if process else ""

    def no_locks(fd, operation):  # as flock answers on NFS without its lock daemon
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    (tmp_path / LOCK_NAME).write_text(note)
    if refused:
        with pytest.raises(SystemExit) as stopped, training_alone(tmp_path):
            pass
        assert stopped.value.code == 2
        said = capsys.readouterr().err
        assert said.startswith(f"mnistlab: {note} may be training in ")
        assert "this file system cannot lock files (No locks available)" in said
    else:
        with training_alone(tmp_path):
            assert (tmp_path / LOCK_NAME).read_text().startswith(f"process {os.getpid()} on ")
        assert "cannot lock files (No locks available; NFS" in capsys.readouterr().out
        assert (tmp_path / LOCK_NAME).read_text() == ""  # the note taken away at the end


def test_a_signal_after_the_last_batch_of_an_epoch_saves_the_epoch_as_finished(tmp_path, capsys,
                                                                               monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # as in a batch job that scancel stops
    with pytest.raises(SystemExit) as ended, training_run(tmp_path, epochs=3) as run:
        for epoch in run.epochs():
            os.kill(os.getpid(), signal.SIGTERM)
            run.end_epoch(epoch, [0.5] * run.steps_per_epoch, 90.0)  # every batch trained
    assert ended.value.code == 143
    said = capsys.readouterr().out
    assert "Stopped by SIGTERM as epoch 1 of 3 ended" in said
    assert torch.load(tmp_path / "mnist_training.pt", weights_only=True)["epoch"] == 1
    # A new sbatch gets a folder of its own: the line says how to go on from this one.
    assert f"sbatch --export=ALL,MNISTLAB_OUT_DIR={tools.readable(tmp_path)} slurm/train" in said


def test_a_resume_on_another_number_of_threads_says_it_will_not_end_exactly(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with training_run(tmp_path) as run:
            run.end_epoch(1, [0.5, 0.4], 90.0)
        torch.set_num_threads(2)
        with training_run(tmp_path, 2000, "--resume"):
            pass
        said = capsys.readouterr().out
        assert "the cut run trained with 1 CPU thread, and this one goes on with 2 CPU " \
               "threads, so it will end close to an uncut run, but not exactly as one" in said
        torch.set_num_threads(1)
        with training_run(tmp_path, 2000, "--resume"):
            pass
        assert "Note: the cut run" not in capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)


def test_each_change_of_machine_is_named_on_resume():
    then = {"device": "cuda", "threads": 0, "pytorch": "2.9.1"}
    note = machine_note(then, {"device": "cpu", "threads": 4, "pytorch": "2.14.1"})
    assert note.startswith("Note: the cut run trained with the cuda device and PyTorch 2.9.1, "
                           "and this one goes on with the cpu device and PyTorch 2.14.1")
    assert machine_note(then, then) is None and machine_note(None, then) is None


def test_more_threads_than_cores_are_capped_with_a_word(monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setattr("mnistlab_tools.device.usable_cores", lambda: 2)
    try:
        device, why = tools.pick_device("cpu", 4096)
        assert torch.get_num_threads() == 2
        assert "threads = 4096 asked, but this process may use 2 cores" in why
        assert why.endswith("so it uses 2")
    finally:
        torch.set_num_threads(threads)


# A folder that cannot take what the run writes

def test_resume_into_a_folder_that_can_save_nothing_stops_before_training(tmp_path, capsys):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(SystemExit) as stopped, training_run(disk, 2000, "--resume"):
            pytest.fail("training started")
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "--resume: nothing can be saved in " in message and "(Read-only file system)" in message
    assert "--out-dir or MNISTLAB_OUT_DIR" in message


def test_a_full_disk_while_unpacking_is_the_disks_fault_and_the_gz_files_are_kept(tmp_path):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        raw_dir = disk / "MNIST" / "raw"
        write_mnist_like(raw_dir, packed=True)
        packed = {path.name: path.read_bytes() for path in raw_dir.iterdir()}
        finished = run_lesson("--data-dir", str(disk), "--epochs", "1", cwd=tmp_path,
                              environment=offline(lesson_environment(tmp_path / "out")))
        assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
        assert "is full (No space left on device)" in finished.stdout
        assert "Make room, or name a folder on another disk with --data-dir" in finished.stdout
        for wrong in ("damaged", "internet", "Delete the file"):
            assert wrong not in finished.stdout
        assert {path.name: path.read_bytes() for path in raw_dir.iterdir()} == packed
        got = run_lesson("--get-data", "--data-dir", str(disk), cwd=tmp_path,
                         environment=offline(lesson_environment(tmp_path / "out")))
    assert got.returncode == 2 and "is full (No space left on device)" in got.stderr
    assert "internet" not in got.stderr and "Traceback" not in got.stderr


def test_a_full_disk_is_named_as_such_when_saving(small_disk, capsys):
    (small_disk / "filler").write_bytes(b"x" * 200_000)
    assert tools.save_network(small_disk / "mnist_cnn.pt", saved.DigitNet(32), {"channels": 32},
                              DIGITS, 0.13, 0.31) is None
    said = capsys.readouterr().out
    assert "(No space left on device. Make room, or choose another folder with --out-dir)" in said
    assert "enforce fail" not in said


def test_gz_files_in_a_folder_you_may_not_write_are_pointed_to_with_a_mirror_that_works(
        tmp_path, capsys):
    with tmpfs(tmp_path / "shared", "1m") as shared:
        raw_dir = shared / "MNIST" / "raw"
        write_mnist_like(raw_dir, packed=True)
        subprocess.run(["mount", "-o", "remount,ro", str(shared)], check=True)
        info = DATASETS["mnist"]
        assert data_folder(info, shared, False) == tools.SAMPLE_DIR
        said = capsys.readouterr().out
        assert "holds the four .gz files, but cannot be written by you (Read-only file " \
               "system)" in said
        advice = said.split("Unpack them into a folder of yours: ")[1].split(".\n")[0]
        mirror = advice.split("--mirror ")[1]
        assert mirror == raw_dir.as_uri() + "/"
        # The way it names works: the files, unpacked into a folder of the learner's.
        assert data_folder(info, tmp_path / "mine", False, mirror) == tmp_path / "mine"
        assert data_problems(tmp_path / "mine" / "MNIST" / "raw") == []


def test_an_output_folder_removed_during_the_run_is_made_again(tmp_path):
    out_dir = tmp_path / "outputs"
    run = tools.Run(tools.read_settings(None, ["--out-dir", str(out_dir)], {}))
    shutil.rmtree(out_dir)  # rm -rf outputs/ while training
    assert tools.save_network(run.network_path(), saved.DigitNet(), {"channels": 16}, DIGITS,
                              0.13, 0.31)
    assert (out_dir / "mnist_cnn.pt").is_file()


def test_a_full_disk_and_a_folder_that_cannot_be_written_are_told_apart():
    for number, phrase in [(errno.ENOSPC, "the disk of data/MNIST/raw is full"),
                           (errno.EDQUOT, "the disk of data/MNIST/raw is full"),
                           (errno.EACCES, "cannot be written by you"),
                           (errno.ECONNREFUSED, "fetch these four files on a machine with")]:
        error = OSError(number, os.strerror(number))
        said = why_no_download(DATASETS["mnist"], Path("data/MNIST/raw"), error,
                                     ["https://example.org/"])
        assert phrase in said, said


# A pipe or a device where a file should be

@pytest.mark.parametrize("make, phrase", [
    (lambda path: os.mkfifo(path), "is a pipe (FIFO), not a checkpoint file"),
    (lambda path: path.symlink_to("/dev/urandom"), "is a device, not a checkpoint file"),
    (lambda path: path.write_bytes(os.urandom(4096)), "is damaged, incomplete, or not a PyTorch"),
])
def test_a_checkpoint_that_is_a_pipe_or_a_device_is_named_without_waiting(tmp_path, make,
                                                                          phrase):
    signal.alarm(30)  # a read that waits would otherwise hang the tests
    try:
        make(tmp_path / "mnist_cnn.pt")
        with pytest.raises(tools.CheckpointError, match=re.escape(phrase)):
            tools.load_checkpoint(tmp_path / "mnist_cnn.pt", saved.DigitNet, "cpu")
        # The run that trained a new network reads the old one to compare: it saves its own.
        path = tools.save_network(tmp_path / "mnist_cnn.pt", saved.DigitNet(), {"channels": 16},
                                  DIGITS, 0.13, 0.31,
                                  {"accuracy": 97.0, "complete": True, "training_images": 60_000})
        assert path == tmp_path / "mnist_cnn.pt" and path.is_file() and not path.is_symlink()
    finally:
        signal.alarm(0)


def test_a_training_state_that_is_a_pipe_is_named_not_waited_on(tmp_path, capsys):
    os.mkfifo(tmp_path / "mnist_training.pt")
    signal.alarm(30)
    try:
        with pytest.raises(SystemExit), training_run(tmp_path, 2000, "--resume"):
            pass
    finally:
        signal.alarm(0)
    assert "is a pipe (FIFO), not a training checkpoint" in capsys.readouterr().err


# Papermill's None

def test_none_from_papermill_means_the_default_for_every_setting():
    cell = {**lesson_parameters(HANDWRITING_NOTEBOOK), "data_dir": None, "out_dir": None,
            "mirror": None, "photos": None}
    settings = tools.read_settings(cell, [], {}, "handwriting")
    assert settings.data_dir == HERE / "data" and settings.out_dir == HERE / "outputs"
    assert settings.mirror == "" and settings.photos == [HERE / "sample/photo_of_a_7.jpg"]
    assert "None" not in str(settings)

