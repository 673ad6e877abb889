"""The two lessons: the script that runs each, the settings of its parameters cell, the values
it fixes for the others, and the name of the network it trains. Standard library only."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Lesson:
    script: str  # the lesson's file, as a terminal runs it
    about: str  # what its --help says it does
    settings: tuple  # the names in its parameters cell, in this order
    fixed: dict  # every other setting, as this lesson always has it
    network: str = ""  # the name of its network's files in out_dir; "" for the dataset's name
    # {name: {field: value}} where its parameters cell differs from SETTINGS: a default, a comment
    own: dict = field(default_factory=dict)


TRAINING = ("epochs", "batch_size", "lr", "seed", "channels")
MACHINE = ("device_name", "threads")
LESSONS = {
    "mnistlab": Lesson(
        "mnistlab.py", "Train a small CNN on MNIST, then look at what it learned and which digits "
        "it confuses.", (*TRAINING, *MACHINE, "dataset", "data_dir", "mirror", "sample",
                         "out_dir", "tensorboard", "resume"),
        {"augment": False, "photos": []}),
    "handwriting": Lesson(
        "handwriting.py", "Train a CNN on MNIST written with other pens, then read photos of "
        "your own handwriting.", (*TRAINING, "augment", *MACHINE, "data_dir", "mirror",
                                  "sample", "out_dir", "photos", "resume"),
        {"dataset": "mnist", "tensorboard": False}, network="handwriting",
        own={"epochs": {"default": 5,  # benchmarks/other_writers.py
                        "comment": "passes over the training data; other hands take longer to "
                                   "learn"},
             "data_dir": {"comment": "MNIST goes in MNIST/raw/ in this folder, downloaded if "
                                     "missing"},
             "mirror": {"comment": "where to download MNIST from, if not the official address"}}),
}
