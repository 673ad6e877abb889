"""The parts a Run's training is made of, each on its own: the stop request, the probe's readings,
the epoch checkpointer that also resumes, and what a stopped run says and how it ends."""

import signal

import pytest
import torch

import mnistlab_saved as saved
from mnistlab_tools.saved import TrainingState
from mnistlab_tools.run import ProbeReadings, StopRequest, end_for_the_batch_system, stopped_line


def test_a_first_ctrl_c_asks_to_stop_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as request:
        assert not request.requested
        signal.raise_signal(signal.SIGINT)
        assert request.requested and request.signal == signal.SIGINT
        signal.raise_signal(signal.SIGTERM)  # a later signal changes nothing: the first says why
        assert request.signal == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_the_probe_is_read_before_its_batches_and_training_mode_comes_back():
    model, readings = saved.DigitNet(), []

    def probe():
        model.eval()
        return 50.0

    reader = ProbeReadings(probe, model, 16, readings)
    for epoch in (1, 2):
        for number in range(16):
            reader.before(epoch, number)
            assert model.training
    assert [step for step, _ in readings] == [0, 1, 3, 6, 9, 12, 16, 17, 19, 22, 25, 28]
    nothing = []
    ProbeReadings(None, model, 16, nothing).before(1, 0)
    assert nothing == []


def checkpointer(out_dir, model):
    settings = {"epochs": 3, "batch_size": 128, "lr": 0.02, "seed": 0, "channels": 8,
                "augment": False, "dataset": "mnist", "sample": True}
    optimizer, scheduler = saved.one_cycle_adam(model, 0.02, 3 * 4)
    return TrainingState(out_dir / "mnist_training.pt", settings, torch.zeros(500, 1, 28, 28),
                         model, optimizer, scheduler)


def test_the_checkpointer_saves_an_epoch_and_resumes_after_it(tmp_path, capsys):
    torch.manual_seed(0)
    trained = saved.DigitNet(8)
    saving = checkpointer(tmp_path, trained)
    assert saving.first_epoch(False, {}) == 1 and not saving.saved
    saving.save(1, {"loss": [0.5] * 4, "accuracy": [90.0], "probes": []})
    assert saving.saved and saving.saved_epoch == 1
    fresh, history = saved.DigitNet(8), {"loss": [], "accuracy": [], "probes": []}
    assert checkpointer(tmp_path, fresh).first_epoch(True, history) == 2
    assert history["accuracy"] == [90.0]
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                  trained.state_dict().values(), strict=True))
    assert "Resuming the run in" in capsys.readouterr().out
    assert checkpointer(tmp_path, fresh).first_epoch(False, {}) == 1  # a fresh run forgets it
    assert not (tmp_path / "mnist_training.pt").exists()


def test_a_stopped_run_says_how_to_go_on(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    line = stopped_line(signal.SIGINT, "in epoch 1 of 3", False, tmp_path, "slurm/train.sbatch")
    assert line == ("Stopped by Ctrl-C in epoch 1 of 3. The network keeps what it has learned so "
                    "far; --resume will find nothing to go on from, since no epoch finished.")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    line = stopped_line(signal.SIGTERM, "as epoch 2 of 3 ended", True, tmp_path, "slurm/ddp.sbatch")
    assert "keeps" not in line and "sbatch --export=ALL,MNISTLAB_OUT_DIR=" in line
    assert line.endswith(" slurm/ddp.sbatch.")  # the lesson's own batch script


@pytest.mark.parametrize("number, saved_epoch, status", [
    (signal.SIGTERM, 2, 128 + signal.SIGTERM),
    (signal.SIGUSR1, 2, 75),  # requeue: the next job resumes after epoch 2
    (signal.SIGUSR1, None, 2),  # nothing saved: a requeued job would start the same epoch
])
def test_a_batch_systems_signal_ends_with_the_status_the_batch_script_reads(
        number, saved_epoch, status):
    with pytest.raises(SystemExit) as ended:
        end_for_the_batch_system(number, saved_epoch, 1)
    assert ended.value.code == status
