"""--resume checks everything that decides the result before it goes on, and says plainly when
a run has finished, when a cut run left nothing, and when the network has changed."""

import functools
import signal

import pytest
import torch
from lesson_runs import training_run
from torch import nn

import mnistlab_saved as saved
import mnistlab_tools as tools


def cut_after_epoch_one(out_dir):
    """A run of two epochs, cut after the first, as a dropped connection leaves it."""
    with training_run(out_dir) as run:
        run.end_epoch(1, [0.5, 0.4], 90.0)
    return out_dir / "mnist_training.pt"


def resumed(out_dir, capsys, images=2000, *options, network=saved.DigitNet):
    with pytest.raises(SystemExit) as stopped:
        with training_run(out_dir, images, "--resume", *options, network=network):
            pass
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("mnistlab: --resume: the run in ") and len(message.splitlines()) == 1
    return message


def test_a_cut_run_resumes_after_its_last_finished_epoch(tmp_path, capsys):
    cut_after_epoch_one(tmp_path)
    with training_run(tmp_path, 2000, "--resume") as run:
        assert list(run.epochs())[:1] == [2] and run.history["accuracy"] == [90.0]
    assert "after epoch 1 of 2" in capsys.readouterr().out


def test_another_setting_is_named_with_both_values(tmp_path, capsys):
    cut_after_epoch_one(tmp_path)
    message = resumed(tmp_path, capsys, 2000, "--epochs", "5")
    assert "was trained with epochs=2, and this one has epochs=5" in message
    assert "Run without --resume to start afresh" in message


def test_the_data_actually_used_must_be_the_same(tmp_path, capsys):
    cut_after_epoch_one(tmp_path)
    message = resumed(tmp_path, capsys, 60_000)
    assert "was trained on 2,000 images, and this one has 60,000" in message
    assert "--data-dir" in message


class EditedNet(saved.DigitNet):
    def __init__(self, channels=16):
        super().__init__(channels)
        self.classify = nn.Sequential(nn.Linear(2 * channels * 16, 64), nn.Linear(64, 10))


def test_an_edited_network_is_named_not_a_state_dict_error(tmp_path, capsys):
    cut_after_epoch_one(tmp_path)
    assert "other layers than EditedNet has now (was it edited?)" in resumed(
        tmp_path, capsys, network=EditedNet)


@pytest.mark.parametrize("damage, phrase", [
    (lambda state: state.pop("optimizer"), "without a proper optimizer"),
    (lambda state: state.update(history={"loss": [], "accuracy": "x"}), "damaged history"),
    (lambda state: state.update(epoch="1"), "without a proper epoch"),
    (lambda state: state.update(epoch=9), "damaged history"),
])
def test_each_field_is_checked_before_it_is_loaded(tmp_path, capsys, damage, phrase):
    path = cut_after_epoch_one(tmp_path)
    state = torch.load(path, weights_only=True)
    damage(state)
    torch.save(state, path)
    assert phrase in resumed(tmp_path, capsys)


def test_resuming_a_finished_run_says_so(tmp_path, capsys):
    with training_run(tmp_path) as run:
        run.end_epoch(1, [0.5], 90.0)
        run.end_epoch(2, [0.3], 93.0)
    with training_run(tmp_path, 2000, "--resume") as run:
        assert list(run.epochs()) == [] and run.complete
    assert "had finished all its 2 epochs: there is nothing left to train" in \
        capsys.readouterr().out


def test_a_run_cut_in_its_first_epoch_says_resume_finds_nothing(tmp_path, capsys):
    cut_after_epoch_one(tmp_path / "older")  # an older run's state, in the same folder
    (tmp_path / "older").rename(tmp_path / "out")
    with training_run(tmp_path / "out") as run:
        assert not (tmp_path / "out" / "mnist_training.pt").exists()  # not resumed in its stead
        signal.raise_signal(signal.SIGINT)  # Ctrl-C, as the terminal sends it
        run.end_epoch(1, [2.3], 10.0)
    said = capsys.readouterr().out
    assert "--resume will find nothing to go on from, since no epoch finished" in said
    assert not run.complete


def test_ctrl_c_as_an_epoch_ends_is_said_too(tmp_path, capsys):
    with training_run(tmp_path) as run:
        for epoch in run.epochs():
            run.end_epoch(epoch, [0.5], 90.0)
            signal.raise_signal(signal.SIGINT)  # Ctrl-C after end_epoch looked, before the next
    assert "Stopped by Ctrl-C as epoch 1 of 2 ended. The network keeps what it has learned so " \
           "far; --resume goes on after the last finished epoch." in capsys.readouterr().out



# The learning curve's readings within an epoch

def reading(model):
    """A stand-in probe: it leaves the network in evaluation mode, as predict does."""
    model.eval()
    return 10.0


def train_epochs(run):
    probe = functools.partial(reading, run.model)
    for epoch in run.epochs():
        losses = []
        for _ in run.watched(iter(range(run.steps_per_epoch)), epoch, probe):
            assert run.model.training  # the probe's evaluation mode never reaches a batch
            losses.append(0.5)
        run.end_epoch(epoch, losses, 90.0)


def test_the_test_accuracy_is_read_ten_times_an_epoch_and_resumed_with_the_run(tmp_path):
    assert sorted(tools.probe_batches(469)) == [0, 4, 9, 18, 32, 46, 93, 187, 281, 375]
    assert sorted(tools.probe_batches(16)) == [0, 1, 3, 6, 9, 12]  # the sample's short epochs
    assert tools.probe_batches(1) == {0}
    with training_run(tmp_path / "uncut") as uncut:
        train_epochs(uncut)
    steps = [step for step, _ in uncut.history["probes"]]
    assert steps == [0, 1, 3, 6, 9, 12, 16, 17, 19, 22, 25, 28]  # two epochs of 16 batches
    with training_run(tmp_path / "cut") as cut:
        for epoch in cut.epochs():
            probe = functools.partial(reading, cut.model)
            list(cut.watched(iter(range(cut.steps_per_epoch)), epoch, probe))
            cut.end_epoch(epoch, [0.5] * cut.steps_per_epoch, 90.0)
            break  # the connection dropped after epoch 1
    with training_run(tmp_path / "cut", 2000, "--resume") as resumed:
        train_epochs(resumed)
    assert resumed.history["probes"] == uncut.history["probes"]  # the same curve, drawn again
