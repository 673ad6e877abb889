"""Every wrong turn a learner can take ends in a plain message, with no traceback and nothing
half-written or lost."""

import signal
import subprocess
import sys
import time

import pytest
import torch
from fake_data import write_mnist_like
from lesson_runs import (
    FIGURES,
    REPO,
    RESULT,
    SCRIPT,
    Kernel,
    StartedLesson,
    cell_index,
    code_cells,
    figures_of_every_cell,
    fresh_clone,
    lesson_environment,
    offline,
    run_lesson,
    run_predict,
    training_run,
)
from run_outputs import assert_plain_stop, figures_drawn, images_in, printed

import mnistlab_tools as tools
from mnistlab_tools.files import why_not_writable


def test_a_cut_short_file_in_a_chosen_data_folder_is_named_and_kept(tmp_path):
    raw_dir = tmp_path / "mnist" / "MNIST" / "raw"
    write_mnist_like(raw_dir, short={"t10k-images-idx3-ubyte"})
    size = (raw_dir / "t10k-images-idx3-ubyte").stat().st_size
    finished = run_lesson(
        "--data-dir",
        str(tmp_path / "mnist"),
        cwd=tmp_path,
        environment=offline(lesson_environment(tmp_path / "out")),
    )
    assert_plain_stop(
        finished,
        "t10k-images-idx3-ubyte is damaged or incomplete",
        "Delete the file",
        "copy a whole one there",
        "--sample",
    )
    assert "train-images-idx3-ubyte is" not in finished.stderr
    assert (raw_dir / "t10k-images-idx3-ubyte").stat().st_size == size  # never deleted for you


def test_a_cut_short_download_in_the_default_folder_is_named_not_downloaded_over(tmp_path):
    script = fresh_clone(tmp_path)
    write_mnist_like(tmp_path / "data" / "MNIST" / "raw", short={"train-images-idx3-ubyte"})
    finished = run_lesson(
        script=script, cwd=tmp_path, environment=offline(lesson_environment(tmp_path / "out"))
    )
    assert_plain_stop(
        finished,
        "train-images-idx3-ubyte is damaged or incomplete",
        "Delete the file to download it again",
    )


def test_a_file_of_the_right_size_but_the_wrong_kind_is_not_called_incomplete(tmp_path):
    raw_dir = tmp_path / "mnist" / "MNIST" / "raw"
    write_mnist_like(raw_dir)
    labels = raw_dir / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00" * labels.stat().st_size)
    finished = run_lesson(
        "--data-dir",
        str(tmp_path / "mnist"),
        cwd=tmp_path,
        environment=offline(lesson_environment(tmp_path / "out")),
    )
    assert_plain_stop(
        finished, "train-labels-idx1-ubyte has the right size but is not an MNIST file of that kind"
    )
    assert "incomplete" not in finished.stderr


def test_a_damaged_gz_that_you_put_there_is_named_and_kept(tmp_path):
    raw_dir = tmp_path / "mnist" / "MNIST" / "raw"
    write_mnist_like(raw_dir, packed=True)
    packed = raw_dir / "t10k-labels-idx1-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:20])
    finished = run_lesson(
        "--data-dir",
        str(tmp_path / "mnist"),
        cwd=tmp_path,
        environment=offline(lesson_environment(tmp_path / "out")),
    )
    assert_plain_stop(finished, "t10k-labels-idx1-ubyte.gz is damaged or incomplete", "--sample")
    assert packed.stat().st_size == 20
    assert not list(raw_dir.glob(".*.partial"))


def test_a_chosen_data_folder_without_the_files_is_downloaded_into_or_falls_back(tmp_path):
    chosen = tmp_path / "my data"
    finished = run_lesson(
        "--data-dir",
        str(chosen),
        "--epochs",
        "1",
        cwd=tmp_path,
        environment=offline(lesson_environment(tmp_path / "out")),
    )
    assert finished.returncode == 0, finished.stderr
    assert "Could not download MNIST into my data/MNIST/raw" in finished.stdout
    assert str(chosen / "MNIST" / "raw") in finished.stdout and "--data-dir" in finished.stdout
    assert "on 500 sample test digits" in finished.stdout
    assert not [path for path in chosen.rglob("*") if path.is_file()]  # nothing half-downloaded


# Output


def test_an_output_folder_that_cannot_be_written_does_not_stop_the_lesson(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    out_dir = tmp_path / "a-file" / "outputs"
    finished = run_lesson(
        "--sample",
        "--out-dir",
        str(out_dir),
        cwd=tmp_path,
        environment=lesson_environment(tmp_path / "unused"),
    )
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "Warning: cannot write to a-file/outputs" in finished.stdout
    assert RESULT.search(finished.stdout) and "Saved" not in finished.stdout
    # The file itself named as the folder: said as such, not as "File exists".
    assert why_not_writable(tmp_path / "a-file") == "it is a file, not a folder"


def test_in_a_notebook_the_figures_still_show_when_nothing_can_be_saved(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    environment = lesson_environment(tmp_path / "a-file" / "outputs", sample=1)
    assert figures_of_every_cell(environment) == len(FIGURES)


# Interruption


def test_interrupting_the_training_cell_leaves_a_model_the_next_cells_use(tmp_path):
    cells = code_cells()
    training = cell_index("training")
    with Kernel(lesson_environment(tmp_path, sample=1, epochs=1000)) as kernel:
        for source in cells[:training]:
            assert kernel.run(source)[0] == "ok"
        kernel.client.execute(cells[training])
        time.sleep(4)
        kernel.manager.interrupt_kernel()
        reply = kernel.client.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        everything = []
        for source in cells[training + 1 :]:
            status, outputs = kernel.run(source)
            assert status == "ok", (source[:200], outputs[-3:])
            assert images_in(outputs) == figures_drawn(source)
            everything += outputs
        assert RESULT.search(printed(everything))


# Re-running


def accuracy_lines(outputs):
    return [line for output in outputs if output.get("name") == "stdout"
            for line in output["text"].splitlines() if "test accuracy" in line]


def test_every_cell_can_run_twice_and_training_starts_afresh(lesson_kernel):
    for index, (source, _, first_outputs) in enumerate(lesson_kernel.first_run):
        status, outputs = lesson_kernel.run(source)
        assert status == "ok", (source[:200], outputs[-3:])
        assert images_in(outputs) == figures_drawn(source)
        if index == cell_index("training"):
            first, second = accuracy_lines(first_outputs), accuracy_lines(outputs)
            # The same seed and a fresh model: the same epochs.
            assert len(first) == 2 and first == second


def test_run_above_after_a_restart_works(lesson_kernel):
    cells = [source for source, *_ in lesson_kernel.first_run]
    # The restarted kernel, with what the first one saved: Run Above on the confusion matrix.
    with Kernel(lesson_kernel.environment) as kernel:
        for source in cells[: cell_index("confusion") + 1]:
            assert kernel.run(source)[0] == "ok"


# Repeatability


@pytest.fixture(scope="module")
def ascii_terminal_run(tmp_path_factory):
    """A second sample run, with the seed and the device given, in a terminal that can print only
    ASCII (PYTHONIOENCODING=ascii, as over some SSH clients)."""
    folder = tmp_path_factory.mktemp("ascii")
    return run_lesson("--sample", "--seed", "0", "--device", "cpu", cwd=folder,
                      environment={**lesson_environment(folder / "out"),
                                   "PYTHONIOENCODING": "ascii"})


def test_the_same_seed_on_the_cpu_gives_the_same_result(terminal_run, ascii_terminal_run):
    # The terminal run fell back to the sample, with the default seed, on the CPU.
    first, second = (RESULT.search(terminal_run.finished.stdout),
                     RESULT.search(ascii_terminal_run.stdout))
    assert first and second and first["accuracy"] == second["accuracy"]


# Round two: wrong turns found by trying to break the lesson

@pytest.mark.parametrize("seconds", [0.3, 0.8, 1.5, 2.2])
def test_ctrl_c_while_the_lesson_imports_ends_with_one_line(tmp_path, seconds):
    # PyTorch and its friends take seconds to import; a KeyboardInterrupt raised inside the
    # import of one of their C++ extensions used to abort with "terminate called after …".
    lesson = subprocess.Popen([sys.executable, str(SCRIPT), "--sample"], cwd=tmp_path,
                              env=lesson_environment(tmp_path / "out"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    lesson.send_signal(signal.SIGINT)
    _, errors = lesson.communicate(timeout=60)
    assert lesson.returncode == 130, errors
    assert errors.strip() == "mnistlab: stopped by Ctrl-C.", errors


def test_ctrl_c_in_a_terminal_stops_after_the_batch_keeps_what_was_learned_and_exits_130(
        tmp_path):
    out_dir = tmp_path / "out"
    with StartedLesson("--sample", "--epochs", "1000", cwd=tmp_path, out_dir=out_dir) as lesson:
        lesson.printed_until("epoch 3:")
        lesson.signal(signal.SIGINT)
        status, rest, errors = lesson.finished()
    assert status == 130, errors
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors, errors
    # In an epoch, or as one ended: either way it says so.
    assert "Stopped by Ctrl-C " in rest and " of 1000" in rest
    assert "Saved the network to out/mnist_cnn.pt" in rest
    for name in FIGURES:
        assert (out_dir / f"{name}.png").exists(), name
    assert not list(out_dir.glob(".*.partial"))


def test_a_second_ctrl_c_ends_the_lesson_at_once(tmp_path):
    out_dir = tmp_path / "out"
    with StartedLesson("--sample", "--epochs", "1000", cwd=tmp_path, out_dir=out_dir) as lesson:
        lesson.printed_until("epoch 1:")
        lesson.signal(signal.SIGINT)
        time.sleep(0.05)
        lesson.signal(signal.SIGINT)
        status, _, errors = lesson.finished(60)
    assert status == 130 and "Traceback" not in errors, errors
    assert errors.strip().splitlines()[-1] == "mnistlab: stopped by Ctrl-C."


def test_training_that_does_not_learn_is_explained_and_never_replaces_a_good_network(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "mnist_cnn.pt").write_bytes(b"a good network, saved before")
    finished = run_lesson("--sample", "--lr", "900", cwd=tmp_path,
                          environment=lesson_environment(out_dir))
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "does no better than guessing" in finished.stdout
    assert "try 0.02 or lower" in finished.stdout
    assert "Not saved: the network did not learn" in finished.stdout
    assert (out_dir / "mnist_cnn.pt").read_bytes() == b"a good network, saved before"


def test_one_batch_an_epoch_that_learns_nothing_is_said_to_have_barely_started(tmp_path, capsys):
    with training_run(tmp_path, 2000, "--batch-size", "2000", epochs=1) as run:
        for epoch in run.epochs():
            run.end_epoch(epoch, [2.38], 7.4)  # the sample's one step, no better than guessing
    assert "with only 1 step an epoch it has barely started" in capsys.readouterr().out
    assert not run.learned and not list(tmp_path.glob("*.pt"))  # no training state saved


def test_a_network_too_large_for_memory_is_refused_before_training(tmp_path):
    finished = run_lesson("--sample", "--channels", "256", "--batch-size", "60000", cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert_plain_stop(finished, "needs about", "GiB", "use a smaller --channels or --batch-size")


def test_a_terminal_that_cannot_print_arrows_gets_ascii(ascii_terminal_run, tmp_path):
    finished = ascii_terminal_run
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert RESULT.search(finished.stdout) and "Exercise 5: not tried yet." in finished.stdout
    # What the lesson prints with arrows, such as a right answer's explanation, gets ASCII ones.
    program = ("import mnistlab_tools as tools, mnistlab_saved as saved\n"
               "tools.set_up_terminal()\n"
               "tools.check_exercise(2, (32, 5, 5), saved.DigitNet(16).features)")
    shown = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                           text=True, env={**lesson_environment(tmp_path), "PYTHONIOENCODING":
                                           "ascii"})
    assert shown.returncode == 0 and "32 -> 28 -> 14 -> 10 -> 5 pixels" in shown.stdout, shown


def test_a_pipe_closed_early_ends_the_run_quietly(tmp_path):
    finished = subprocess.run(f"'{sys.executable}' '{SCRIPT}' --sample | head -1", shell=True,
                              cwd=tmp_path, env=lesson_environment(tmp_path / "out"),
                              capture_output=True, text=True, timeout=300)
    assert finished.stdout.startswith("Settings: ") and len(finished.stdout.splitlines()) == 1
    assert "Traceback" not in finished.stderr and "BrokenPipe" not in finished.stderr


def test_two_runs_writing_one_file_never_write_into_each_other(tmp_path):
    writer = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from mnistlab_tools.files import save_file\n"
              "from pathlib import Path\n"
              "for _ in range(40):\n"
              "    assert save_file(Path(sys.argv[2]),"
              " lambda f: f.write(sys.argv[3].encode() * 200_000))\n")
    runs = [subprocess.Popen([sys.executable, "-c", writer, str(REPO), str(tmp_path / "f"), mark])
            for mark in "ab"]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    content = (tmp_path / "f").read_bytes()
    assert content in (b"a" * 200_000, b"b" * 200_000)
    assert [path.name for path in tmp_path.iterdir()] == ["f"]


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_nothing_half_written(small_disk):
    import mnistlab_saved

    path = small_disk / "mnist_cnn.pt"
    path.write_bytes(b"the previous, whole checkpoint")
    (small_disk / "filler").write_bytes(b"x" * 200_000)
    assert not tools.save_network(path, mnistlab_saved.DigitNet(32), {"channels": 32},
                                  [str(digit) for digit in range(10)], 0.13, 0.31)
    assert path.read_bytes() == b"the previous, whole checkpoint"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "mnist_cnn.pt"]


def test_an_mnist_file_you_may_not_read_is_named_as_such(tmp_path):
    write_mnist_like(tmp_path / "data" / "MNIST" / "raw")
    (tmp_path / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").chmod(0)
    finished = run_lesson("--data-dir", "data", cwd=tmp_path, without_rights=True,
                          environment=offline(lesson_environment(tmp_path / "out")))
    assert_plain_stop(finished, "t10k-labels-idx1-ubyte is not readable by you",
                      "ask its owner", "--data-dir")


def test_a_checkpoint_and_a_photo_you_may_not_read_are_named_as_such(tmp_path):
    import mnistlab_saved

    tools.save_network(tmp_path / "mnist_cnn.pt", mnistlab_saved.DigitNet(16), {"channels": 16},
                       [str(digit) for digit in range(10)], 0.13, 0.31)
    for photo in ("mine.jpg", "theirs.jpg"):
        (tmp_path / photo).write_bytes((REPO / "sample" / "photo_of_a_7.jpg").read_bytes())
    (tmp_path / "theirs.jpg").chmod(0)
    environment = lesson_environment(tmp_path / "out")
    read = run_predict("mine.jpg", "theirs.jpg", "--checkpoint", "mnist_cnn.pt", cwd=tmp_path,
                       environment=environment, without_rights=True)
    assert read.returncode == 0 and "Traceback" not in read.stderr, read.stderr
    assert "Skipped theirs.jpg: it is not readable by you" in read.stdout
    assert "mine.jpg: " in read.stdout
    (tmp_path / "mnist_cnn.pt").chmod(0)
    refused = run_predict("mine.jpg", "--checkpoint", "mnist_cnn.pt", cwd=tmp_path,
                          environment=environment, without_rights=True)
    assert_plain_stop(refused, "mnist_cnn.pt is not readable by you", "ask its owner")


def test_an_output_folder_you_may_not_write_is_named_and_the_lesson_goes_on(tmp_path):
    (tmp_path / "theirs").mkdir(mode=0o555)
    finished = run_lesson("--sample", "--out-dir", "theirs", cwd=tmp_path, without_rights=True,
                          environment=lesson_environment(tmp_path / "unused"))
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "cannot write to theirs (Permission denied)" in finished.stdout
    assert "--out-dir" in finished.stdout and RESULT.search(finished.stdout)
    assert list((tmp_path / "theirs").iterdir()) == []


def test_a_whole_pickled_model_is_refused_in_one_plain_sentence(tmp_path):
    import mnistlab_saved

    torch.save(mnistlab_saved.DigitNet(), tmp_path / "whole.pt")
    with pytest.raises(tools.CheckpointError) as refused:
        tools.load_checkpoint(tmp_path / "whole.pt", mnistlab_saved.DigitNet, torch.device("cpu"))
    assert "holds a whole pickled Python object" in str(refused.value)
    assert "\x1b" not in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_a_folder_that_cannot_be_written_points_at_data_dir(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    finished = run_lesson("--data-dir", str(tmp_path / "a-file"), cwd=tmp_path,
                          environment=offline(lesson_environment(tmp_path / "out")))
    assert finished.returncode == 0, finished.stderr
    assert "--data-dir" in finished.stdout and "on 500 sample test digits" in finished.stdout


def test_a_read_only_clone_points_at_data_dir_and_goes_on_with_the_sample(read_only_clone,
                                                                          tmp_path):
    finished = run_lesson(script=read_only_clone / "mnistlab.py", cwd=tmp_path,
                          environment=lesson_environment(tmp_path / "out"))
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "cannot be written by you (Read-only file system)" in finished.stdout
    assert ".partial" not in finished.stdout  # the folder is named, not a file of the lesson's
    assert "--data-dir" in finished.stdout and "on 500 sample test digits" in finished.stdout
