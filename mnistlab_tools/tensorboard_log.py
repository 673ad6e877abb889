"""The training logged for TensorBoard (--tensorboard): some training images and the network's
graph when it starts, then each batch's loss, each epoch's mean loss and test accuracy, and the
probe's readings within the epochs. The tensorboard package is imported only here."""

import time
import warnings

from .console import readable
from .files import new_folder


class TensorBoardLog:
    """A log in a new folder in `runs`, named after the network and the time it starts, used as
    `with TensorBoardLog(…) as log:`; the folder is named on exit."""

    def __init__(self, runs, network_name, model, images):
        from torch.utils.tensorboard import SummaryWriter  # it needs the tensorboard package

        self.log_dir = new_folder(runs, f"{network_name}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.writer = SummaryWriter(self.log_dir)
        pictures = images[:32]
        self.writer.add_images("training images",
                               (pictures - pictures.min()) / (pictures.max() - pictures.min()))
        with warnings.catch_warnings():  # add_graph traces with torch.jit, deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.writer.add_graph(model.eval(), images[:8])

    def __enter__(self):
        return self

    def probe(self, step, accuracy):
        """The probe's test accuracy after `step` batches of the run."""
        self.writer.add_scalar("accuracy/test-slice", accuracy, step)

    def epoch(self, epoch, losses, mean_loss, accuracy, steps_before):
        """An epoch's batch losses, the first after steps_before batches, its mean loss and its
        test accuracy."""
        for step, loss in enumerate(losses, steps_before + 1):
            self.writer.add_scalar("loss/batch", loss, step)
        self.writer.add_scalar("loss/epoch", mean_loss, epoch)
        self.writer.add_scalar("accuracy/test", accuracy, epoch)

    def __exit__(self, *_):
        self.writer.close()
        print(f"TensorBoard log: {readable(self.log_dir)}")
