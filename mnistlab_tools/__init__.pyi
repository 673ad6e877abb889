# The package's names, room by room: what the lessons, predict.py and the benchmarks use. Each is
# loaded when it is first used (lazy_loader reads this file), so that a light name never loads
# PyTorch. The other names of a room are its own: import them from the room.
from .console import PYTHON, readable, set_up_terminal, stop
from .data import SAMPLE_DIR, find_data
from .device import check_memory, describe_device, pick_device, rank_device
from .exercises import check_exercise
from .figures import (image_grid, learning_curve, reading, readings_figure, show,
                      what_the_network_sees)
from .pad import drawing_pad
from .photos import prepare_photos
from .ranks import as_ranks, lost_a_rank
from .run import Run, probe_batches
from .saved import CheckpointError, load_checkpoint, network_path, network_record, save_network
from .settings import program_settings, read_settings, settings_or_stop
