"""A better network is never lost: a run cut short, or trained on fewer images (the sample), is
saved beside a better one rather than over it, and says so in one line."""

import signal

import pytest
import torch
from lesson_runs import StartedLesson, run_and_training, training_run

import mnistlab_saved as saved
import mnistlab_tools as tools
from mnistlab_tools.saved import why_lesser

FULL = {"accuracy": 99.05, "complete": True, "training_images": 60_000}


def a_better_network(out_dir, trained_out_dir):
    """A checkpoint that says it scored 99.05 % after a whole run on full MNIST."""
    checkpoint = torch.load(trained_out_dir / "mnist_cnn.pt", weights_only=True)
    out_dir.mkdir()
    torch.save({**checkpoint, "outcome": FULL}, out_dir / "mnist_cnn.pt")
    return (out_dir / "mnist_cnn.pt").read_bytes()


@pytest.mark.parametrize("outcome, replaces", [
    ({"accuracy": 92.0, "complete": True, "training_images": 2000}, False),  # less data
    ({"accuracy": 99.2, "complete": False, "training_images": 60_000}, True),  # cut, but better
    ({"accuracy": 98.0, "complete": False, "training_images": 60_000}, False),  # cut, and worse
    ({"accuracy": 97.0, "complete": True, "training_images": 60_000}, False),  # whole, and worse
    ({"accuracy": 99.05, "complete": True, "training_images": 60_000}, True),  # whole, as good
    ({"accuracy": 99.5, "complete": True, "training_images": 70_000}, True),  # more data
])
def test_a_lesser_network_is_told_from_a_better_one(outcome, replaces):
    assert (why_lesser(outcome, FULL) is None) == replaces
    assert why_lesser(outcome, None) is None  # nothing to lose
    # A checkpoint of an earlier lesson records nothing: a whole run replaces it.
    assert (why_lesser(outcome, {}) is None) == outcome["complete"]


@pytest.mark.parametrize("outcome, name, why", [
    ({"accuracy": 47.45, "complete": True, "training_images": 60_000}, "lower",
     "since it scored lower on the same test set"),
    ({"accuracy": 92.8, "complete": True, "training_images": 2000}, "fewer-images",
     "since it was trained on fewer images"),
])
def test_a_lesser_network_is_saved_beside_the_better_one(trained_out_dir, tmp_path, capsys,
                                                         monkeypatch, outcome, name, why):
    monkeypatch.chdir(tmp_path)
    before = a_better_network(tmp_path / "out", trained_out_dir)
    path = tools.save_network(tmp_path / "out" / "mnist_cnn.pt", saved.DigitNet(),
                              {"channels": 16}, DIGITS, 0.13, 0.31, outcome)
    assert path == tmp_path / "out" / f"mnist_cnn.{name}.pt" and path.exists()
    assert (tmp_path / "out" / "mnist_cnn.pt").read_bytes() == before
    said = capsys.readouterr().out
    assert f"Kept out/mnist_cnn.pt (99.05 % on its test set, trained on 60,000 images): this " \
           f"network ({outcome['accuracy']:.2f} %) is saved beside it as " \
           f"out/mnist_cnn.{name}.pt, {why}" in said
    assert f"mv out/mnist_cnn.{name}.pt out/mnist_cnn.pt" in said
    _, checkpoint = tools.load_checkpoint(path, saved.DigitNet, "cpu")
    assert checkpoint["outcome"] == outcome


def test_ctrl_c_never_replaces_a_better_network(trained_out_dir, tmp_path):
    out_dir = tmp_path / "out"
    before = a_better_network(out_dir, trained_out_dir)
    with StartedLesson("--sample", "--epochs", "1000", cwd=tmp_path, out_dir=out_dir) as lesson:
        lesson.printed_until("epoch 1:")
        lesson.signal(signal.SIGINT)
        status, rest, errors = lesson.finished()
    assert status == 130 and "Traceback" not in errors, errors
    assert (out_dir / "mnist_cnn.pt").read_bytes() == before
    assert "Kept out/mnist_cnn.pt (99.05 % on its test set, trained on 60,000 images)" in rest
    assert "saved beside it as out/mnist_cnn.cut-short.pt, since it was cut short" in rest
    assert "Saved the network to out/mnist_cnn.cut-short.pt" in rest


# The record saved with a network is measured on that very network.

DIGITS = [str(digit) for digit in range(10)]


def trained_and_saved(out_dir):
    """A run of one epoch, its score read and its network saved: the network to protect."""
    with training_run(out_dir, 2000, epochs=1) as run:
        for epoch in run.epochs():
            run.end_epoch(epoch, [0.3] * 16, 95.0)
    assert run.save_network(DIGITS, 0.13, 0.31, channels=16) == out_dir / "mnist_cnn.pt"
    return (out_dir / "mnist_cnn.pt").read_bytes()


def test_a_refused_training_saves_nothing_over_the_network(tmp_path, capsys):
    before = trained_and_saved(tmp_path)
    run, training = run_and_training(tmp_path, 2000, "--resume", epochs=5)
    with pytest.raises(SystemExit), training:
        pass  # refused: the cut run it would go on with was not trained for 5 epochs
    assert run.save_network(DIGITS, 0.13, 0.31, channels=16) is None
    assert "Not saved: this run trained no network" in capsys.readouterr().out
    assert (tmp_path / "mnist_cnn.pt").read_bytes() == before


def test_a_network_changed_after_its_score_is_not_saved_with_that_score(tmp_path, capsys):
    before = trained_and_saved(tmp_path)
    with pytest.raises(KeyboardInterrupt), training_run(tmp_path, 2000, epochs=2) as run:
        for epoch in run.epochs():
            run.end_epoch(epoch, [0.3] * 16, 99.5)  # a score read, then more training
            with torch.no_grad():
                run.model.classify.weight.add_(1.0)  # a step of the next batch
            raise KeyboardInterrupt  # a second Ctrl-C, in the middle of that batch
    assert run.save_network(DIGITS, 0.13, 0.31, channels=16) is None
    assert "Not saved: the network changed after its test accuracy was last read" in \
        capsys.readouterr().out
    assert (tmp_path / "mnist_cnn.pt").read_bytes() == before


@pytest.mark.parametrize("old, new, lesser", [
    (["other pens"], [], "without-other-pens"),  # lesson two's suggestion, augment = False
    ([], ["other pens"], None),  # trained for more than the saved one was
    (["other pens"], ["other pens"], "lower"),  # the same purpose: the score decides
])
def test_a_network_trained_for_less_than_the_saved_one_never_replaces_it(old, new, lesser):
    saved_one = {**FULL, "trained_with": old}
    assert why_lesser({**FULL, "accuracy": 99.0, "trained_with": new}, saved_one) == lesser
