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
# MNIST's handwritten digits, 28 × 28 grey pixels each. You watch it learn,
# look at what its filters find, see where it goes wrong, and check yourself
# in five exercises. Run it cell by cell in VS Code (**Run Cell**), with
# **Run All** in `mnistlab.ipynb`, or as `.venv/bin/python mnistlab.py` in a terminal,
# which saves the figures as files. Lesson two, `handwriting.py`, reads
# photos of your own handwriting.

# %% [markdown]
# ## Parameters
#
# Edit a value and run this cell and the ones below again. In a terminal,
# an option (`.venv/bin/python mnistlab.py --epochs 3`; `--help` lists them) or a
# variable (`MNISTLAB_EPOCHS=3`) overrides it; papermill takes `-p epochs 3`.

# %% tags=["parameters"]
epochs = 1                # passes over the training data
batch_size = 128          # images per training step
lr = 0.02                 # peak learning rate of the one-cycle schedule
seed = 0                  # the same seed gives the same result on the same machine
channels = 16             # feature maps of the first convolution; the second has twice as many
device_name = "auto"      # where to train: "auto", "cpu", "cuda", "cuda:1" (a GPU by index), "mps"
threads = 0               # CPU threads to train with; 0: every core this job may use
dataset = "mnist"         # "mnist" for handwritten digits, "fashion" for Fashion-MNIST's clothes
data_dir = "data"         # the data goes in MNIST/raw/ in this folder, downloaded if missing
mirror = ""               # where to download the data from, if not the official address
sample = False            # True: train and test on the small sample in sample/, in seconds
out_dir = "outputs"       # where the figures and the trained network are saved
tensorboard = False       # True: log the training to runs/ in out_dir, for TensorBoard
resume = False            # True: go on with the run cut short in out_dir, after its last epoch

# %% [markdown]
# `mnistlab_tools/` holds what keeps the lesson robust but teaches nothing
# about machine learning. It checks the values above: a typing mistake stops
# the lesson now, in one line. The run it starts owns `out_dir`: every
# figure, the trained network and the training state are saved there.

# %% tags=["setup"]
import mnistlab_tools as tools

tools.set_up_terminal()  # in a terminal: Ctrl-C ends in one line, and figures go to files
settings = tools.settings_or_stop(globals())  # the values above, the environment, the options
print(settings)
run = tools.Run(settings)  # this run and its folder, out_dir

# %% [markdown]
# ## The data
#
# `find_data` downloads the four MNIST files into `data/MNIST/raw/` once and
# checks them every time. Offline, it says how to fetch them by hand and goes
# on with the small sample of real MNIST that ships with the lesson.
# `dataset = "fashion"` swaps in Fashion-MNIST's ten kinds of clothing.

# %%
data = tools.find_data(settings)  # where the files are, and what the dataset holds

# %% [markdown]
# PyTorch builds and trains the network; the other libraries draw and count.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F
from sklearn.metrics import classification_report, confusion_matrix
from torch import nn

# %% [markdown]
# torchvision reads the files: each split holds its images as one tensor of
# bytes (`data`, 0 to 255) and their labels (`targets`).

# %%
train_set = data.torchvision_class(data.folder, train=True)
test_set = data.torchvision_class(data.folder, train=False)
class_names, items = data.class_names, data.items
print(f"{len(train_set):,} training {items} and {len(test_set):,} test {items} of {data}")

# %% [markdown]
# Before training anything, look at a few training images and their labels.

# %%
first_labels = [class_names[label] for label in train_set.targets[:30].tolist()]
examples = tools.image_grid(train_set.data[:30], first_labels, "Training images and their labels")
run.show(examples, "sample_digits")

# %% [markdown]
# ## Where to train: the device
#
# A GPU trains much faster than a CPU, so `auto` takes the idle GPU with the
# most free memory that PyTorch can run. Everything we build goes to `device`.

# %% tags=["device"]
device, why = tools.pick_device(settings.device_name, settings.threads)
print(tools.describe_device(device, why))

# %% [markdown]
# ## The data as tensors
#
# All of MNIST fits in memory, so each split becomes one tensor on the
# device, and a batch is a slice of it: much faster than a `DataLoader`. The
# pixels are scaled to mean 0 and standard deviation 1, which helps the
# optimiser, and get the channel dimension that convolutions expect.

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
# Both splits are scaled with the training images' mean and std: nothing is
# learned from the test images.

# %%
mean, std = pixel_mean_and_std(train_set)
train_images, train_labels = to_tensors(train_set, mean, std, device)
test_images, test_labels = to_tensors(test_set, mean, std, device)
print(f"training images {tuple(train_images.shape)}, mean {mean:.4f}, std {std:.4f}")

# %% [markdown]
# ## The network
#
# A convolution slides small learned filters (5 × 5 pixels) over the image,
# so the same stroke detector works anywhere in it. Two rounds of
# convolution → max-pooling → batch normalisation → ReLU turn the 28 × 28
# image into 32 maps of 4 × 4 features, and a linear layer turns those into
# ten scores, one per digit. Batch normalisation keeps each layer's outputs
# on a steady scale, which allows a high learning rate.

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
# Print the network and count its weights. `check_memory` tries one step on
# a few images, and stops the lesson now if whole batches would not fit in
# the device's memory. (A cell marked `#@save`, like the one above, is also
# copied into `mnistlab_saved.py`, for lesson two and `predict.py`.)

# %%
model = DigitNet(settings.channels)
print(model, f"{sum(p.numel() for p in model.parameters()):,} parameters", sep="\n")
tools.check_memory(model, train_images[:4], settings.batch_size)

# %% [markdown]
# ## Training and testing
#
# One epoch is one pass over the training images in a fresh random order, a
# batch at a time: the network scores the batch, cross-entropy measures how
# wrong the scores are, backpropagation finds how each weight should change,
# and the optimiser changes it. `predict` runs the network without tracking
# gradients, in evaluation mode, where batch normalisation uses the
# statistics it learned. Adam adapts each weight's step size, and the
# one-cycle schedule warms the learning rate up to `lr` and then anneals it
# towards zero: together they reach about 99 % in one epoch.

# %%
#@save
def shuffled_batches(images, labels, batch_size):
    """The images and their labels in a fresh random order, a batch at a time."""
    order = torch.randperm(len(images), device=images.device)
    return ((images[batch], labels[batch]) for batch in order.split(batch_size))


def steps_in_an_epoch(images, batch_size):
    """How many batches shuffled_batches makes of the images: the last one may be smaller."""
    return -(-len(images) // batch_size)


def train_one_epoch(model, optimizer, scheduler, batches):
    """Train on each batch of (images, labels) once; the loss of each batch."""
    model.train()
    losses = []
    for images, labels in batches:
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
# Now train. The network is kept "channels last", the memory layout the
# convolution routines are fastest with, and running this cell again starts
# over from the same fresh network. `probe` reads the test accuracy on 400
# test digits ten times an epoch, for the learning curve.
#
# `run.training` does what a run on a real machine needs, none of it
# machine learning: a progress bar, and a line for each epoch's loss and
# accuracy; Ctrl-C (or the notebook's Interrupt) ends training after the
# current batch and keeps the network; a network that is not learning
# stops with an explanation; after every epoch it saves the training's
# whole state in `out_dir`, from which `resume = True` goes on after a run
# cut short. `docs/settings.md` says more.

# %% tags=["training"]
model = fresh_network(settings.channels, settings.seed, device)
steps_per_epoch = steps_in_an_epoch(train_images, settings.batch_size)
optimizer, scheduler = one_cycle_adam(model, settings.lr, settings.epochs * steps_per_epoch)


def probe():  # the accuracy on a fixed 400 of the test digits
    return accuracy(predict(model, test_images[:400]), test_labels[:400])


settings.note_unread_edits(globals())  # a parameters cell run again, but not read yet
with run.training(model, optimizer, scheduler, train_images, steps_per_epoch):
    for epoch in run.epochs():
        batches = shuffled_batches(train_images, train_labels, settings.batch_size)
        losses = train_one_epoch(model, optimizer, scheduler, run.watched(batches, epoch, probe))
        test_accuracy = accuracy(predict(model, test_images), test_labels)
        run.end_epoch(epoch, losses, test_accuracy)  # says the epoch's loss and accuracy

# %% [markdown]
# ## The learning curve
#
# The training loss of every batch, smoothed, falls steeply and then levels
# off. The test accuracy, read by `probe` before any training (a guess: about
# 10 %) and then most often early on, shows how well that learning carries
# over to digits never seen; after each epoch it is read on the whole test
# set. Within a tenth of the first epoch the network goes from guessing to
# nine digits in ten; the rest of the epoch wins the last few percent.

# %%
curve = tools.learning_curve(run.history, steps_per_epoch)
run.show(curve, "learning_curve")

# %% [markdown]
# ## What the network sees
#
# Each first-layer filter is 5 × 5 weights that training chose, drawn red
# where positive and blue where negative. A red band beside a blue one
# answers most where the image turns from dark to light across it: it finds
# an edge, or a stroke, at its angle. Slid over a test digit, each filter
# makes a map of where its kind of stroke is: for a 7, some maps light up
# along the bar, others along the stem. The second block combines those 16
# maps, 5 × 5 of their pixels at a time, into 32 maps of larger parts, where
# strokes end, bend or meet, which say only roughly where in the digit each
# part is. Those 32 × 4 × 4 = 512 numbers are all the linear layer reads.

# %%
sees = tools.what_the_network_sees(model, test_images[0], class_names[test_labels[0]])
run.show(sees, "what_the_network_sees")

# %% [markdown]
# ## Which digits does it confuse? The confusion matrix
#
# Row *i*, column *j* counts the test digits known to be *i* that the network
# read as *j*: the diagonal holds the right answers, every other cell a kind
# of mistake. scikit-learn counts them, pandas names the rows and columns,
# and seaborn draws the table.

# %% tags=["confusion"]
predicted = predict(model, test_images)
test_accuracy = accuracy(predicted, test_labels)
noun = "digit" if settings.dataset == "mnist" else "class"
confusion = pd.DataFrame(confusion_matrix(test_labels.cpu(), predicted.cpu(),
                                          labels=range(len(class_names))),
                         index=pd.Index(class_names, name=f"Known {noun}"),
                         columns=pd.Index(class_names, name=f"Predicted {noun}"))
table, table_axis = plt.subplots(figsize=(8, 6.5))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=table_axis)
table_axis.set(title=f"Confusion matrix: {test_accuracy:.2f} % of {len(test_labels):,} "
                     f"test {items} right")
run.show(table, "confusion_matrix")

# %% [markdown]
# The same counts, read per class: *precision* is how often a prediction of
# that digit is right, *recall* how many of that digit's test images were
# found.

# %%
print(classification_report(test_labels.cpu(), predicted.cpu(), target_names=class_names, digits=3))

# %% [markdown]
# ## The misclassified digits
#
# Behind each off-diagonal count are real images. Some mistakes are the
# network's fault; others are so badly written (or even mislabelled) that a
# person would hesitate too.

# %%
wrong = torch.nonzero(predicted != test_labels).flatten().cpu()
print(f"{len(wrong)} of {len(test_labels):,} test {items} misclassified")
if len(wrong):
    captions = [f"{class_names[test_set.targets[i]]} → {class_names[predicted[i]]}"
                for i in wrong[:40].tolist()]
    gallery = tools.image_grid(test_set.data[wrong[:40]], captions,
                               f"Misclassified test {items} (known → predicted)", color="firebrick")
    run.show(gallery, "misclassified_digits")

# %% [markdown]
# ## Draw a digit
#
# Now write for it yourself: draw a digit in the box with the mouse (or a
# pen), and the network you just trained reads it as you lift the pen. The
# drawing is made an MNIST digit the way lesson two prepares a photo, and the
# pad shows that 28 × 28 image beside the ten probabilities. Draw a 7 that
# it reads as a 1, and look at why. In a terminal there is no pad: the cell
# says where to draw instead.

# %% tags=["pad"]
from mnistlab_saved import prepare_digit  # lesson two's preparation of a photo

tools.drawing_pad({"your network": model}, prepare_digit, mean, std, run.folder)

# %% [markdown]
# ## Saving the network and loading it back
#
# A trained network is its weights: `state_dict()` holds them by name. The
# run saves them in `out_dir` with what it takes to use them again (the
# arguments that build a `DigitNet` of that width, the class names, the
# pixels' mean and std) and how well the network did, so that a better
# network saved before is never replaced by a lesser one. Loaded into a
# fresh network, the weights must give the same accuracy.

# %% tags=["save"]
saved = run.save_network(class_names, mean, std, channels=settings.channels)
if saved:
    restored = run.load_network(DigitNet, device)
    print(f"Loaded back into a fresh DigitNet, it scores "
          f"{accuracy(predict(restored, test_images), test_labels):.2f} % on the test {items}")

# %% [markdown]
# ## Result
#
# One line to compare runs: how long training took and how well it did.

# %%
print(f"Result: {run.seconds:.2f} s of training on {device}, test accuracy {test_accuracy:.2f} % "
      f"on {len(test_labels):,} {data.name} test {items}")
run.exit_if_interrupted()  # in a terminal, the exit status says that the run was cut short

# %% [markdown]
# ## Try it yourself
#
# Five exercises, each a cell to edit: replace the `None` with your answer
# and run the cell. The line under it says whether you are right, and why,
# or gives a hint; try again as often as you like.
#
# **1.** How many weights does `DigitNet(channels=8)` have? Work it out from
# its layers: a 5 × 5 convolution from *a* maps to *b* has *a* × *b* × 25
# weights; batch normalisation has a scale and an offset per map; the
# linear layer has a weight for each input and digit, and a bias per digit.

# %% tags=["exercise"]
weights_of_a_narrower_network = None  # a whole number
tools.check_exercise(1, weights_of_a_narrower_network, DigitNet)

# %% [markdown]
# **2.** Each 5 × 5 convolution takes 4 pixels off the image's height and
# width, and each pooling halves them. What shape would `model.features`
# give for one image of 32 × 32 pixels, such as CIFAR-10's?

# %% tags=["exercise"]
shape_of_32_by_32_features = None  # (maps, height, width)
tools.check_exercise(2, shape_of_32_by_32_features, model.features)

# %% [markdown]
# **3.** Before its first step, the network knows nothing and gives each of
# the ten digits about the same probability. Cross-entropy is minus the
# logarithm of the probability it gives the right digit. What loss does the
# learning curve start at? (`math.log` is the natural logarithm.)

# %% tags=["exercise"]
loss_before_training = None  # a number
tools.check_exercise(3, loss_before_training, run.history)

# %% [markdown]
# **4.** Which mistake did your network make most often? Read it from the
# confusion matrix, as (known, predicted).

# %% tags=["exercise"]
most_frequent_mistake = None  # for example ("7", "2")
tools.check_exercise(4, most_frequent_mistake, confusion)

# %% [markdown]
# **5.** Write `accuracy` yourself: the percentage of predictions that are
# right, as a Python number. `predicted == known` compares two tensors
# element by element.

# %% tags=["exercise"]
def my_accuracy(predicted, known):
    return None  # your code here


tools.check_exercise(5, my_accuracy)

# %% [markdown]
# ## Where to go next
#
# - Train longer, `epochs = 8`: the training loss keeps falling, the test
#   accuracy levels off near 99.4 %. A wider network, `channels = 32`, gets
#   about 99.5 %, in two minutes on two CPU cores.
# - Try a much higher `lr`, or a tiny `batch_size`, and see what breaks.
# - Which of the misread digits would you have got wrong yourself?
# - A harder problem with the same code: `dataset = "fashion"`.
# - Watch training in TensorBoard with `tensorboard = True` (`docs/beyond.md`).
# - Read photos of your own handwriting: lesson two, `handwriting.py`.
# - Train on a folder of your own labelled images, with a network of your
#   own: `docs/your-own-images.md` shows the few lines that change.
