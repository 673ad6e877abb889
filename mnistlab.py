# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Your first convolutional network: reading handwritten digits with PyTorch
#
# In this lesson you train a small convolutional neural network (CNN) to read
# the handwritten digits of MNIST: 60,000 training images and 10,000 test
# images, each 28 × 28 grey pixels with the digit it shows. You watch it learn,
# look at what its filters find in a digit, and see where it goes wrong: a
# confusion matrix of which digits it mixes up, and the digits it misread.
#
# The same file runs three ways: cell by cell in VS Code (**Run Cell** on each
# `# %%`), **Run All** in `mnistlab.ipynb`, or `python mnistlab.py` in a
# terminal, where the figures are saved as PNG files instead of shown.

# %% [markdown]
# ## Parameters
#
# Everything you may want to change is here. Edit a value and run this cell
# and the ones below again. In a terminal, an option overrides a value
# (`python mnistlab.py --epochs 3`; `--help` lists them all), and so does an
# environment variable such as `MNISTLAB_EPOCHS=3`: **an option wins over the
# environment, which wins over this cell**. Papermill runs the notebook with
# other values: `papermill mnistlab.ipynb out.ipynb -p epochs 3`.

# %% tags=["parameters"]
epochs = 1                # passes over the training data
batch_size = 128          # images per training step
lr = 0.02                 # peak learning rate of the one-cycle schedule
seed = 0                  # the same seed gives the same result on the same machine
channels = 16             # feature maps of the first convolution; the second has twice as many
augment = True            # train on digits redrawn with other pens, slants, sizes (MNIST only)
device_name = "auto"      # where to train: "auto", "cpu", "cuda", "cuda:1" (a GPU by index), "mps"
threads = 0               # CPU threads to train with; 0: every core this job may use
dataset = "mnist"         # "mnist" for handwritten digits, "fashion" for Fashion-MNIST's clothes
data_dir = "data"         # the data goes in MNIST/raw/ in this folder, downloaded if missing
mirror = ""               # where to download the data from, if not the official address
sample = False            # True: train and test on the small sample in sample/, in seconds
out_dir = "outputs"       # where the figures and the trained network are saved
tensorboard = False       # True: log the training to runs/ in out_dir, for TensorBoard
photos = ["sample/photo_of_a_7.jpg"]  # photos of handwritten digits to read at the end
resume = False            # True: go on with the run cut short in out_dir, after its last epoch

# %% [markdown]
# `mnistlab_tools/`, beside this file, holds what keeps the lesson robust
# but teaches nothing about machine learning, a small module per concern;
# each use of it below is a line or two. First it checks the values above:
# a typing mistake stops the lesson now, in one line that says what is
# wrong, not halfway through. The line printed says where each value came
# from; figures and the trained network are saved in `out_dir`.

# %%
import mnistlab_tools as tools

tools.set_up_terminal()  # in a terminal: Ctrl-C ends in one line, and figures go to files
settings = tools.settings_or_stop(globals())  # the values above, the environment, the options
print(tools.describe(settings))
figures = tools.Figures(settings.out_dir)

# %% [markdown]
# ## The data
#
# The lesson learns from the four MNIST files in `data/MNIST/raw/`. The
# first time, `find_data` downloads them there; every time, it checks that
# they are whole, so that a download cut short shows up now rather than as a
# strange error later. Many servers cannot reach the internet: then it says
# how to fetch the files by hand and picks a small sample of real MNIST
# digits that ships with this repository (2,000 for training, 500 for
# testing). `dataset = "fashion"` swaps in Fashion-MNIST: the same format and
# size, but photos of ten kinds of clothing, much harder to tell apart. This
# comes before the libraries load, which takes seconds, so that a problem
# with the data is told at once.

# %%
dataset_info = tools.DATASETS[settings.dataset]  # its name, class names, download addresses
data_folder = tools.find_data(dataset_info, settings.data_dir, settings.sample, settings.mirror)

# %% [markdown]
# ## Imports
#
# PyTorch builds and trains the network, torchvision reads the dataset's
# files, and matplotlib, pandas, seaborn and scikit-learn draw and count the
# results.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F
from PIL import ImageOps
from sklearn.metrics import classification_report, confusion_matrix
from torch import nn
from torchvision.transforms.functional import pil_to_tensor

# %% [markdown]
# torchvision's dataset class reads the files: each split holds the images
# as one tensor of bytes (`data`, 0 to 255) and their labels (`targets`).

# %%
train_set = dataset_info.torchvision_class(data_folder, train=True)
test_set = dataset_info.torchvision_class(data_folder, train=False)
class_names, items = dataset_info.class_names, dataset_info.items
on_sample = data_folder == tools.SAMPLE_DIR
print(f"{len(train_set):,} training {items} and {len(test_set):,} test {items} of "
      f"{dataset_info.name}",
      "from the committed sample" if on_sample else f"from {tools.readable(data_folder)}")

# %% [markdown]
# Before training anything, look at the data: a few training images with the
# label that comes with each.

# %%
first_labels = [class_names[label] for label in train_set.targets[:30].tolist()]
examples = tools.digit_grid(train_set.data[:30], first_labels, "Training images and their labels")
figures.show(examples, "sample_digits")

# %% [markdown]
# ## Where to train: the device
#
# A GPU trains much faster than a CPU, so `auto` takes one: on a shared
# server, the idle NVIDIA GPU with the most free memory, or an Apple GPU
# through MPS. `"cuda:1"` names one, as `nvidia-smi` numbers them. All we
# build later is moved to this `device`. On a CPU, PyTorch runs a thread per
# usable core, or `threads` of them. On a GPU, `pick_device` turns off the
# fastest-but-variable convolution routines, so that a seed repeats exactly.
# The lines below name the Python and PyTorch, and warn on a Slurm login
# node, no place to train (`python mnistlab.py --doctor` says more).

# %%
device, why = tools.pick_device(settings.device_name, settings.threads)
print(tools.describe_device(device, why), *tools.short_report(), sep="\n")

# %% [markdown]
# All of MNIST takes 190 MB as 32-bit numbers, so it fits in memory, even on
# a GPU. The usual `DataLoader` would turn each image into a tensor one at a
# time, in Python, 60,000 times an epoch; that costs more than the training
# itself for a network this small. Instead we convert each split once, into
# one tensor on the device, and a batch is then just a slice of it. The
# pixels are scaled to mean 0 and standard deviation 1, which helps the
# optimiser, and get a channel dimension, because convolutions expect images
# shaped `(batch, channels, height, width)`.

# %%
#@save
def pixel_mean_and_std(split):
    pixels = split.data.float() / 255
    return pixels.mean().item(), pixels.std().item()


def to_tensors(split, mean, std, device):
    """A split's images, scaled and with a channel dimension, and its labels, on the device."""
    images = (split.data.float() / 255 - mean) / std
    return images.unsqueeze(1).to(device), split.targets.to(device)

# %% [markdown]
# Both splits are scaled with the training images' mean and std: the test
# images stand for digits the network has never seen, so nothing is learned
# from them.

# %%
mean, std = pixel_mean_and_std(train_set)
train_images, train_labels = to_tensors(train_set, mean, std, device)
test_images, test_labels = to_tensors(test_set, mean, std, device)
print(f"training images {tuple(train_images.shape)}, mean {mean:.4f}, std {std:.4f}")

# %% [markdown]
# ## The network
#
# A convolution slides small learned filters (5 × 5 pixels here) over the
# image, so the same stroke detector works anywhere in it. Two rounds of
# convolution → max-pooling → batch normalisation → ReLU turn the 28 × 28
# image into 32 maps of 4 × 4 features, and a linear layer turns those into
# ten scores, one per digit. `channels` sets the width. The network is small
# (under 20,000 weights) because MNIST is easy, and every choice keeps it
# fast: pooling straight after each convolution leaves a quarter of the
# pixels for the layers after it; batch normalisation keeps each layer's
# outputs on a steady scale, which allows a high learning rate, and adds its
# own offset, so the convolutions need no bias.
#
# A cell that starts with `#@save` is also copied into `mnistlab_saved.py`
# (`python -m mnistlab_tools.export` does it), so that `predict.py` can build
# the same network without running the lesson.

# %%
#@save
class DigitNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=5, bias=False),             # 28 × 28 → 24 × 24
            nn.MaxPool2d(2),                                               # → 12 × 12
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=5, bias=False),  # → 8 × 8
            nn.MaxPool2d(2),                                               # → 4 × 4
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
        )
        self.classify = nn.Linear(2 * channels * 4 * 4, 10)

    def forward(self, images):
        return self.classify(self.features(images).flatten(1))

# %% [markdown]
# Print the network and count its weights. `check_memory` runs it once on a
# few training images to see what a training step keeps in memory, and
# stops the lesson now if training on whole batches would not fit in the
# device's free memory.

# %%
model = DigitNet(settings.channels)
print(model, f"{sum(p.numel() for p in model.parameters()):,} parameters", sep="\n")
tools.check_memory(model, train_images[:4], settings.batch_size)

# %% [markdown]
# ## Other hands, other pens
#
# MNIST's digits were written with much the same pen, and scaled and centred
# the same way, so a network that only ever sees them learns that pen too:
# strokes about two pixels wide become part of what an 8 looks like to it.
# Write with a marker and the strokes come out two or three times as wide,
# the loops of an 8 fill in, and such a network reads it as a 1 or a 3. On
# MNIST's own test digits with strokes two pixels wider on every side, a
# network trained on MNIST alone reads only 69 % right; with thinner strokes,
# 91 %; shrunk to 70 % of their size, 92 %.
#
# The cure is to show the network other pens while it learns (*data
# augmentation*). With `augment`, half of each batch is redrawn before the
# network sees it: a quarter of that half with thinner strokes, a quarter as
# it is, and a quarter each one and two pixels thicker; then each image is
# slanted by up to 15°, scaled to between 60 % and 125 %, and moved by up to
# 2 pixels. A thicker pen is max-pooling that keeps the image's size: each
# pixel takes the brightest value around it; a thinner pen takes the darkest.
# The other half of the batch stays as MNIST has it, so that one epoch still
# learns MNIST's own digits as well as before. Training takes about a tenth
# longer, and the network reads the thick strokes 95 % right, the thin ones
# 98 % and the small digits 98 % (`benchmarks/handwriting.py` measures it).
# Set `augment = False` and run the lesson again to see the difference
# yourself. Clothes are not written with a pen, so Fashion-MNIST is always
# trained as it is.
#
# ![The same 8 with four pens, read before and after](figures/other_pens.png)

# %%
#@save
def brightest_nearby(images, size):
    """Each pixel replaced by the brightest in the size × size square around it: a max-pool that
    keeps the image's size, done across and then down, which a CPU does several times faster."""
    before, after = (size - 1) // 2, size // 2
    rows = images.flatten(0, 1)
    for _ in range(2):  # across; then, transposed, down; then transposed back
        rows = F.max_pool1d(F.pad(rows, (before, after), value=-torch.inf), size, stride=1)
        rows = rows.transpose(1, 2)
    return rows.reshape(images.shape)


def other_pens(images):
    """A quarter of the images with thinner strokes, a quarter as they are, and a quarter each
    with strokes 1 and 2 pixels thicker on every side."""
    thin, same, thick, thicker = images.tensor_split(4)
    return torch.cat([-brightest_nearby(-thin, 2), same, brightest_nearby(thick, 3),
                      brightest_nearby(thicker, 5)])


def slanted_and_scaled(images, slant=15, scales=(0.6, 1.25), shift=2):
    """Each image slanted by up to `slant` degrees, scaled, and moved by up to `shift` pixels."""
    def uniform(low, high):  # a number for each image, shaped to go with each of its pixels
        return torch.empty(len(images), 1, 1, device=images.device).uniform_(low, high)

    zoom, tilt = uniform(*scales), uniform(-slant, slant).deg2rad().tan()
    centres = torch.linspace(-27 / 28, 27 / 28, 28, device=images.device)  # -1 to 1 across
    across, down = centres.view(1, 1, 28), centres.view(1, 28, 1)
    read_across = (across + tilt * down) / zoom + uniform(-shift, shift) / 14
    read_down = down / zoom + uniform(-shift, shift) / 14
    where = torch.stack(torch.broadcast_tensors(read_across, read_down), dim=-1)
    return F.grid_sample(images, where, padding_mode="border", align_corners=False)


# %% [markdown]
# ## Training and testing
#
# One epoch is one pass over the training images in a fresh random order, a
# batch at a time: the network scores the batch, cross-entropy measures how
# wrong the scores are, backpropagation finds how each weight should change,
# and the optimiser changes it. `predict` runs the network without tracking
# gradients (`inference_mode`) and in evaluation mode, where batch
# normalisation uses the statistics it learned instead of the batch's own.
# Adam adapts the step size of each weight on its own, and the one-cycle
# schedule warms the learning rate up to `lr` and then anneals it towards
# zero: together they reach about 99 % in a single epoch.

# %%
#@save
def shuffled_batches(images, labels, batch_size):
    """The images and their labels in a fresh random order, a batch at a time."""
    order = torch.randperm(len(images), device=images.device)
    return ((images[batch], labels[batch]) for batch in order.split(batch_size))


def train_one_epoch(model, optimizer, scheduler, batches, augment=False):
    """Train on each batch of (images, labels) once; the loss of each batch."""
    model.train()
    losses = []
    for images, labels in batches:
        if augment:  # half the batch in other hands; half as MNIST has it, which it is tested on
            changed, kept = images.tensor_split(2)
            images = torch.cat([slanted_and_scaled(other_pens(changed)), kept])
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
    return torch.stack(losses).tolist() if losses else []


@torch.inference_mode()
def predict(model, images):
    model.eval()
    return torch.cat([model(batch).argmax(dim=1) for batch in images.split(1000)])


def accuracy(predicted, known):
    return (predicted == known).float().mean().item() * 100


def fresh_network(channels, seed, device):
    """A new DigitNet with weights drawn from the seed, on the device, kept channels last."""
    torch.manual_seed(seed)
    return DigitNet(channels).to(device, memory_format=torch.channels_last)


def one_cycle_adam(model, lr, total_steps):
    """Adam, with a schedule that warms the learning rate up to lr, then anneals it to zero."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=total_steps)

# %% [markdown]
# Now train. `fresh_network` keeps the model "channels last" (pixel by pixel,
# all channels together), the memory layout the CPU's and the GPU's
# convolution routines are fastest with. Running this cell again starts over
# from a fresh network, and the same seed gives the same result.
#
# `tools.TrainingRun` does what a long run on a real machine needs, none of
# it machine learning: it shows a progress bar; Ctrl-C, or the notebook's
# Interrupt button, ends training after the current batch and keeps the
# network as it stands, so the cells below still work (a second Ctrl-C in a
# terminal ends the lesson at once); running out of memory ends in one line
# that says what to try; a network that is not learning (a loss that is no
# longer a number, or accuracy no better than guessing) stops training with
# an explanation. With `tensorboard`, it logs the loss of each batch and the
# loss and test accuracy of each epoch as the epoch ends, some training
# images and the network's graph to `runs/` in `out_dir`, for TensorBoard. Ten
# times an epoch it calls `probe`, which reads the test accuracy on a slice
# of the test set for the learning curve (3 % of the training time). After
# every epoch it saves the whole state of the training (network, optimiser,
# schedule, random generators) in `out_dir`, so that `resume = True` (or
# `--resume`) goes on after the last finished epoch of a run that was cut
# short, and ends as if it never was. On a cluster, a batch job told to stop
# (`SIGTERM`, or the warning before its time limit) ends after the current
# batch too, and the job queued again resumes (`docs/cluster.md`).

# %%
model = fresh_network(settings.channels, settings.seed, device)
steps_per_epoch = -(-len(train_images) // settings.batch_size)
optimizer, scheduler = one_cycle_adam(model, settings.lr, settings.epochs * steps_per_epoch)


def probe():  # the accuracy on a fixed 400 of the test digits, read ten times an epoch
    return accuracy(predict(model, test_images[:400]), test_labels[:400])


with tools.TrainingRun(settings, model, optimizer, scheduler, train_images, probe) as run:
    for epoch in run.epochs():
        batches = shuffled_batches(train_images, train_labels, settings.batch_size)
        losses = train_one_epoch(model, optimizer, scheduler, run.watched(batches, epoch),
                                 settings.augment and settings.dataset == "mnist")
        test_accuracy = accuracy(predict(model, test_images), test_labels)
        print(f"epoch {epoch}: training loss {sum(losses) / max(len(losses), 1):.4f}, "
              f"test accuracy {test_accuracy:.2f} %")
        run.end_epoch(epoch, losses, test_accuracy)

# %% [markdown]
# ## The learning curve
#
# The training loss of every batch, smoothed, should fall steeply and then
# level off. The test accuracy shows how well that learning carries over to
# digits the network has never seen: `probe`, above, reads it ten times an
# epoch on the same 400 test digits, the first time before any training,
# when the network guesses (about 10 %), and most often early in the epoch,
# where it learns fastest; after each epoch it is measured on all 10,000.
# Within a tenth of the first epoch the network goes from guessing to
# reading nine digits in ten right, and the rest of the epoch wins the last
# few percent. (`tools.learning_curve` draws the curves on one figure with
# matplotlib.)

# %%
curve = tools.learning_curve(run.history, steps_per_epoch)
figures.show(curve, "learning_curve")

# %% [markdown]
# ## What the network sees
#
# Each filter of the first convolution is 5 × 5 weights that training
# chose, drawn below in red where they are positive and blue where negative.
# A red band beside a blue one answers most where the image goes from dark
# to light across it: a filter like that finds an edge, or a stroke, at its
# angle. Slid over a test digit, each filter makes a map of where its kind of
# stroke is: for a 7, some maps light up along the bar at the top, others
# along the slanting stem or at its end. The second block combines the
# first block's 16 maps, over 5 × 5 of their pixels at a time (half the
# digit's width), into 32 maps of larger parts, where strokes end, bend or
# meet; at 4 × 4 pixels, they say only roughly where in the digit each part
# is. Those 32 × 4 × 4 = 512 numbers are all that the linear layer reads to
# choose a digit.

# %%
sees = tools.what_the_network_sees(model.features, test_images[0], class_names[test_labels[0]])
figures.show(sees, "what_the_network_sees")

# %% [markdown]
# ## Which digits does it confuse? The confusion matrix
#
# Accuracy is one number; the confusion matrix shows where the errors are. Row
# *i*, column *j* counts the test digits known to be *i* that the network read
# as *j*: the diagonal holds the right answers, every other cell a kind of
# mistake. scikit-learn's `confusion_matrix` counts them; pandas names the
# rows and columns, and seaborn draws the table.

# %%
predicted = predict(model, test_images)
test_accuracy = accuracy(predicted, test_labels)
noun = "digit" if settings.dataset == "mnist" else "class"
confusion = pd.DataFrame(confusion_matrix(test_labels.cpu(), predicted.cpu(), labels=range(10)),
                         index=pd.Index(class_names, name=f"Known {noun}"),
                         columns=pd.Index(class_names, name=f"Predicted {noun}"))
table, table_axis = plt.subplots(figsize=(8, 6.5))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=table_axis)
table_axis.set(title=f"Confusion matrix: {test_accuracy:.2f} % of {len(test_labels):,} "
                     f"test {items} right")
figures.show(table, "confusion_matrix")
pairs = confusion.stack()
mistakes = pairs[pairs.index.get_level_values(0) != pairs.index.get_level_values(1)]
print("Most frequent mistakes (known → predicted: count):")
print(", ".join(f"{known} → {guess}: {count}"
                for (known, guess), count in mistakes.nlargest(5).items() if count))

# %% [markdown]
# The same counts, read per class: *precision* is how often a prediction of
# that digit is right, *recall* how many of that digit's test images were
# found.

# %%
print(classification_report(test_labels.cpu(), predicted.cpu(), target_names=class_names, digits=3))

# %% [markdown]
# ## The misclassified digits
#
# Behind each off-diagonal count are real images. Look at the test digits
# the network got wrong: some are the network's fault, others are so badly
# written (or even mislabelled) that a person would hesitate too.

# %%
wrong = torch.nonzero(predicted != test_labels).flatten().cpu()
print(f"{len(wrong)} of {len(test_labels):,} test {items} misclassified")
if len(wrong):
    captions = [f"{class_names[test_set.targets[i]]} → {class_names[predicted[i]]}"
                for i in wrong[:40].tolist()]
    gallery = tools.digit_grid(test_set.data[wrong[:40]], captions,
                               f"Misclassified test {items} (known → predicted)", color="firebrick")
    figures.show(gallery, "misclassified_digits")

# %% [markdown]
# ## Saving the network and loading it back
#
# A trained network is its weights: `state_dict()` holds them by name. The
# checkpoint saves them with what it takes to use them again (the width, the
# dataset and its class names, and the mean and std the pixels were scaled
# with), one file per dataset. It is written whole or not at all, and loaded
# with `weights_only=True`, so that a checkpoint from elsewhere cannot run
# code. Loaded into a fresh network, the weights must give exactly the same
# accuracy. It also records how the network was trained and how well it
# did, so that a better network is never lost: a network that did not learn
# is not saved, and one cut short or trained on the sample is saved beside a
# better one rather than over it.

# %%
checkpoint = tools.checkpoint_path(settings.out_dir, settings.dataset)
saved = None
if not run.learned:
    print(f"Not saved: the network did not learn, and {tools.readable(checkpoint)} keeps what it "
          f"had.")
elif figures.can_save:
    saved = tools.save_checkpoint(checkpoint, model, settings.channels, settings.dataset,
                                  class_names, mean, std, run.outcome(test_accuracy, on_sample))
if saved:
    try:
        restored, _ = tools.load_checkpoint(saved, DigitNet, device)
    except tools.CheckpointError as error:
        tools.stop(str(error))
    print(f"Saved the network to {tools.readable(saved)}; loaded back, it scores "
          f"{accuracy(predict(restored, test_images), test_labels):.2f} % on the test {items}")

# %% [markdown]
# ## Your own handwriting
#
# Write a digit on paper, take a photo, and ask the network. It often fails
# at first, not because the network is bad but because a photo looks
# nothing like an MNIST digit. `prepare_digit` makes it into one, the way
# MNIST's digits were made:
#
# 1. **Greyscale**, from 0 (black) to 1 (white), and turned upright if the
#    phone stored it on its side. (`tools.prepare_photos`, which opens it,
#    has shrunk it to at most a million pixels.)
# 2. **Inverted** when the ink is darker than the paper: MNIST's digits are
#    light strokes on black.
# 3. **Paper removed**: the typical grey of the image (its median) becomes
#    0 and the ink 1; shadows fainter than a fifth of the ink become 0.
# 4. **Cropped** to the ink.
# 5. **Given MNIST's pen**, which MNIST's makers did not need: strokes
#    thinner than MNIST's thin ones (1.5 of its pixels) are spread, and
#    strokes broader than its broad ones (3 pixels) are thinned, as other
#    pens are made in training. `stroke_width` measures a stroke as its ink
#    over half the length of its edges: a stroke 3 pixels wide and 20 long
#    has 60 pixels of ink and about 40 of edge.
# 6. **Scaled** so that the longer side is 20 pixels, keeping the digit's
#    shape.
# 7. **Centred** in a 28 × 28 frame by its centre of mass (the average
#    position of the ink), as MNIST's digits were.
#
# `read_digits` then scales the pixels with the training images' mean and
# std, as in training, and turns the network's scores into probabilities.
# When even the likeliest digit is under 60 %, the network is unsure, and
# the reading names the two likeliest: `4 or 9 (48 %, 41 %)`.

# %%
#@save
def stroke_width(digit):
    """How wide a digit's strokes are, in pixels: its ink over half the length of its edges."""
    framed = F.pad(digit, (1, 1, 1, 1))  # ink that meets the crop's border has an edge there too
    edges = framed.diff(dim=0).abs().sum() + framed.diff(dim=1).abs().sum()
    return 2 * digit.sum().item() / max(edges.item(), 1e-6)


def with_pen(digit, narrowest, widest):
    """The digit with strokes from `narrowest` to `widest` pixels wide: the brightest pixel
    nearby spreads the ink, the darkest thins it, by `reach` pixels on every side."""
    width = stroke_width(digit)
    reach = round((min(max(width, narrowest), widest) - width) / 2)
    sign, padded = (1 if reach >= 0 else -1), F.pad(digit, (abs(reach),) * 4)[None, None]
    return sign * brightest_nearby(sign * padded, 2 * abs(reach) + 1)[0, 0]


def cropped(digit):
    """The digit cropped to its ink."""
    rows, columns = torch.nonzero(digit, as_tuple=True)
    return digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]


def prepare_digit(photo):
    """A 28 × 28 tensor of a photo or scan of one handwritten digit, made the way MNIST's were."""
    photo = ImageOps.exif_transpose(photo).convert("L")
    grey = pil_to_tensor(photo)[0].float() / 255
    if grey.median() > 0.5:
        grey = 1 - grey
    paper, ink = grey.median(), grey.quantile(0.999)  # a thin pen may ink 0.1 % of a photo
    if ink - paper < 0.15:
        raise ValueError("it looks blank: no ink stands out from the paper")
    digit = ((grey - paper) / (ink - paper)).clamp(0, 1)
    digit[digit < 0.2] = 0
    digit = cropped(digit)
    pixels = max(digit.shape) / 20  # of the photo's, to one of MNIST's
    digit = cropped(with_pen(digit, 1.5 * pixels, 3 * pixels))  # MNIST's thin and broad pens
    height, width = (max(1, round(side * 20 / max(digit.shape))) for side in digit.shape)
    digit = F.interpolate(digit[None, None], size=(height, width), mode="bilinear",
                          antialias=True)[0, 0]
    centre_row = (digit.sum(dim=1) * torch.arange(height)).sum() / digit.sum()
    centre_column = (digit.sum(dim=0) * torch.arange(width)).sum() / digit.sum()
    top = int((14 - centre_row).round().clamp(0, 28 - height))
    left = int((14 - centre_column).round().clamp(0, 28 - width))
    frame = torch.zeros(28, 28)
    frame[top:top + height, left:left + width] = digit
    return frame


@torch.inference_mode()
def read_digits(model, digits, mean, std):
    """The network's ten probabilities for each prepared digit."""
    model.eval()
    scores = model(((digits - mean) / std)[:, None].to(next(model.parameters()).device))
    return scores.softmax(dim=1).cpu()

# %% [markdown]
# Put your photos beside the lesson and list them in `photos` at the top.
# To read photos later with the network saved above, without training
# again, run `python predict.py my_7.jpg` in a terminal.

# %%
if settings.dataset != "mnist":
    print("Reading handwritten digits needs a network trained on MNIST: set dataset = \"mnist\".")
elif not run.learned:
    print("The network did not learn, so its readings would mean nothing: train it again.")
elif settings.photos:
    digits, photos_read = tools.prepare_photos(settings.photos, prepare_digit)
    probabilities = read_digits(model, digits, mean, std)
    for path, chances in zip(photos_read, probabilities, strict=True):
        print(f"{tools.readable(path)}: {tools.reading(chances)}")
    figures.show(tools.readings_figure(digits, probabilities, photos_read), "your_digits")

# %% [markdown]
# ## Result
#
# One line to compare runs: how long training took and how well it did.

# %%
print(f"Result: {run.seconds:.2f} s of training on {device}, test accuracy {test_accuracy:.2f} % "
      f"on {len(test_labels):,} {'sample' if on_sample else dataset_info.name} test {items}")
run.exit_if_interrupted()  # in a terminal, the exit status says that the run was cut short

# %% [markdown]
# ## Where to go next
#
# - Train longer: `epochs = 8`. Watch the learning curve: the training loss
#   keeps falling, the test accuracy levels off near 99.4 %. Then add a
#   wider network (`channels = 32`): about 99.5 %, in two minutes on two
#   CPU cores.
# - Try a much higher or lower `lr`, or a tiny `batch_size`, and see what
#   breaks.
# - Look at the gallery again: which mistakes would you have made yourself?
# - Photograph your own digits and read them with `photos` or `predict.py`.
# - Try a harder problem with the same code: `dataset = "fashion"`.
# - Watch training epoch by epoch with `tensorboard = True`.
