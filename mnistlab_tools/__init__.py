"""What keeps the lessons, mnistlab.py and handwriting.py, robust, so that each can tell its
story: one module per concern, each short enough to read in one sitting.

    console      one plain line to stop with; a quiet Ctrl-C for programs run in a terminal
    lessons      the two lessons: their scripts, their settings, their networks' names
    settings     each setting declared once; reading them from the cell, MNISTLAB_* and options
    options      the command line: an option for each setting, and --help
    start        the lesson's first step: its settings, or --doctor's or --get-data's action
    checks       the checks of the settings' values
    doctor       what this machine offers the lesson (--doctor), without PyTorch
    builds       which PyTorch build runs on which NVIDIA GPU and driver, and how to install it
    cluster      a Slurm job's share of the machine; a login node, where nothing should train
    files        files written whole, regular files read, one run a folder, writable folders
    data         finding, downloading and checking the dataset files
    device       where to train, set up so that a seed repeats
    memory       whether the training fits in the device's memory, and if it does not
    report       the lesson's few lines on this machine: Python, PyTorch, GPUs
    figures      figures shown and saved
    checkpoints  the trained network on disk
    stopping     what asks a run to stop after its batch: Ctrl-C, SIGTERM, SIGUSR1
    tensorboard_log  the training logged for TensorBoard
    training     TrainingRun, from these parts: progress, the probe, the learning check
    resume       the training state saved after each epoch, and --resume's checks
    photos       reading photos of handwriting
    exercises    the checks of lesson one's exercises
    export       copies the lesson's #@save cells into mnistlab_saved.py (not imported here)
    parameters   writes the parameters cells and docs/settings.md's table from SETTINGS (nor this)

`import mnistlab_tools as tools` changes nothing in the importing program and loads no PyTorch:
`tools.NAME` loads the module that holds NAME when it is first used. The modules never import a
lesson, and their functions take what they use as arguments.
"""

import importlib

# The names the lessons, predict.py, the benchmarks and the tests take from the package, by the
# module that holds each. Only that module is loaded, when the name is first used, so that a light
# name never loads PyTorch.
NAMES = {
    "console": "PYTHON end_at_once end_quietly readable set_up_terminal stop",
    "lessons": "LESSONS",
    "settings": "SETTING SETTINGS describe note_unread_edits read_settings settings_of "
                "starting_values",
    "options": "SettingsError parse settings_parser",
    "start": "settings_or_stop",
    "files": "HERE new_folder remove_leftovers save_file why_not_writable",
    "builds": "BUILDS build_for capability_of install_command major runs_on",
    "doctor": "doctor_report download_line driver_cuda_version driver_line free_space_line "
              "gpu_lines gpus_seen install_advice missing_requirements pytorch_line",
    "cluster": "cluster_lines usable_cores",
    "data": "DATASETS IDX_FILES SAMPLE_DIR data_problems find_data why_no_download",
    "device": "busy_gpus chosen_device describe_device devices_here least_busy_gpu pick_device",
    "memory": "check_memory out_of_memory_stops training_bytes",
    "report": "short_report",
    "figures": "Figures digit_grid learning_curve reading readings_figure what_the_network_sees",
    "checkpoints": "CheckpointError checkpoint_path load_checkpoint network_record "
                   "save_checkpoint why_lesser",
    "resume": "EpochCheckpointer machine_note machine_of",
    "stopping": "STOP_SIGNALS StopRequest end_for_the_batch_system stopped_line",
    "tensorboard_log": "TensorBoardLog",
    "training": "ProbeReadings TrainingRun mean_loss probe_batches training_trouble",
    "photos": "MOST_PIXELS fitting flattened open_photo prepare_photos",
    "exercises": "check_accuracy check_first_loss check_most_frequent_mistake check_shape "
                 "check_weights",
}
MODULE_OF = {name: module for module, names in NAMES.items() for name in names.split()}


def __getattr__(name):
    if name not in MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{MODULE_OF[name]}", __name__), name)
    globals()[name] = value  # found once, kept: the next use costs nothing
    return value


def __dir__():
    return sorted({*globals(), *MODULE_OF})
