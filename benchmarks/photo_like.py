"""Digits as other people write and photograph them, to test reading your own handwriting: an
MNIST digit with a thinner or thicker pen, as a phone photo of it on paper, or a digit in a
handwriting font, photographed; and such a photo read back as predict.py reads one."""

import io
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from torchvision.transforms.v2.functional import elastic, gaussian_blur

CANVAS = (300, 340)  # height, width of the photo, in pixels

# Handwriting-style fonts that Debian packages (apt-get install fonts-bwht fonts-comic-neue
# fonts-dkg-handwriting fonts-breip fonts-humor-sans fonts-klee fonts-kristi): upright ones whose
# digits look written, not printed. Weights a font ships are separate files.
HANDWRITING_FONTS = (
    "bwht/BecauseWeBuild-Regular.otf", "bwht/BecauseWeConnect-Regular.otf",
    "bwht/BecauseWeCreate-Regular.otf", "bwht/BecauseWeLearn-Regular.otf",
    "bwht/BecauseWeMentor-Regular.otf", "bwht/BecauseWeOrganize-Regular.otf",
    "comic-neue/ComicNeue-Light.otf", "comic-neue/ComicNeue-Regular.otf",
    "comic-neue/ComicNeue-Bold.otf", "fifthhorseman/dkg.ttf", "fifthhorseman/dkgBd.ttf",
    "breip/Breip.ttf", "humor-sans/Humor-Sans.ttf", "klee/KleeOne-Regular.ttf",
    "klee/KleeOne-SemiBold.ttf", "kristi/Kristi.ttf",
)
# More of Debian's handwriting fonts (apt-get install fonts-dancingscript fonts-havana
# fonts-sjfonts fonts-tomsontalks fonts-yusei-magic fonts-seto), and slanted ones: writers that
# benchmarks/other_writers.py keeps apart, because lesson two's other pens were chosen looking at
# how the fonts above read, never at these.
UNSEEN_FONTS = (
    "dancingscript/DancingScript-Regular.otf", "dancingscript/DancingScript-Bold.otf",
    "havana/Havana-Regular.otf", "sjfonts/Delphine.ttf", "sjfonts/SteveHand.ttf",
    "tomsontalks/TomsonTalks.ttf", "yusei-magic/YuseiMagic-Regular.ttf", "seto/setofont.ttf",
    "comic-neue/ComicNeue-Italic.otf", "fifthhorseman/dkgIt.ttf", "fifthhorseman/dkgBI.ttf",
)
FONT_FOLDERS = (Path("/usr/share/fonts/opentype"), Path("/usr/share/fonts/truetype"))


def installed_fonts(names=HANDWRITING_FONTS):
    """The paths of the fonts of these names that this machine has."""
    return [folder / name for name in names for folder in FONT_FOLDERS if (folder / name).is_file()]


def bent(darkness, generator, strength=34.0, smoothness=4.0, scale=1):
    """The ink moved by an elastic distortion (Simard, Steinkraus and Platt, 2003), the way one
    writer's digit differs from another's: uniform noise blurred by a Gaussian `smoothness` MNIST
    pixels wide, times `strength`, says how far each pixel moves, about 1.4 MNIST pixels on
    average. `scale`: the image's pixels to one MNIST pixel (10 for a digit 200 pixels high)."""
    height, width = darkness.shape
    noise = torch.rand(1, 2, -(-height // scale), -(-width // scale), generator=generator)
    kernel = 2 * round(3 * smoothness) + 1
    moves = gaussian_blur(noise * 2 - 1, [kernel, kernel], [smoothness, smoothness]) * strength
    moves = F.interpolate(moves, size=(height, width), mode="bilinear", align_corners=False)
    across_and_down = moves * scale * 2 / torch.tensor([width, height]).view(1, 2, 1, 1)
    return elastic(darkness[None], across_and_down.permute(0, 2, 3, 1))[0]


def thicker(digits, pixels):
    """Digits (n × 28 × 28) with strokes `pixels` wider on every side: a max-pool that keeps the
    size."""
    size = 2 * pixels + 1
    return F.max_pool2d(digits[:, None], size, stride=1, padding=pixels)[:, 0]


def thinner(digits):
    """Digits with thinner strokes: each pixel the darkest of the 2 × 2 square from it."""
    padded = F.pad(digits[:, None], (0, 1, 0, 1))
    return -F.max_pool2d(-padded, 2, stride=1)[:, 0]


def read_as_photo(prepare, photo):
    """A photo saved as JPEG and made into a digit by `prepare` (the lesson's prepare_digit), as
    predict.py reads one; one that predict.py would refuse as blank, as an empty frame, which no
    network reads right."""
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=80)
    try:
        return prepare(Image.open(buffer))
    except ValueError:
        return torch.zeros(28, 28)


def photos_read_back(prepare, digits):
    """Digits (n × 28 × 28, 0 to 1), each made a photo-like JPEG and read back by `prepare`."""
    as_bytes = (digits * 255).round().to(torch.uint8)
    return torch.stack([read_as_photo(prepare, photo_of(digit, seed))
                        for seed, digit in enumerate(as_bytes)])


def on_paper(darkness, generator):
    """Ink of this darkness (0 to 1, canvas-sized) on light, unevenly lit paper, slightly blurred,
    with sensor noise, as a PIL image; save it as JPEG to complete it."""
    height, width = darkness.shape
    rows, columns = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    paper = 0.92 - 0.12 * (0.6 * rows + 0.4 * columns)  # light falling off across the sheet
    photo = paper * (1 - 0.8 * darkness) + 0.02 * torch.randn(height, width, generator=generator)
    image = Image.fromarray((photo.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    return image.filter(ImageFilter.GaussianBlur(1)).convert("RGB")


def photo_of(digit, seed, scale=8, canvas=CANVAS):
    """An MNIST digit several times larger, off-centre, as dark ink on a photo of paper.

    digit: a 28 × 28 uint8 tensor, light ink on black, as MNIST stores it."""
    generator = torch.Generator().manual_seed(seed)
    height, width = canvas
    ink = F.interpolate(
        digit[None, None].float() / 255, scale_factor=scale, mode="bilinear", align_corners=False
    )[0, 0]
    top = int(torch.randint(0, height - ink.shape[0], (1,), generator=generator))
    left = int(torch.randint(0, width - ink.shape[1], (1,), generator=generator))
    darkness = torch.zeros(height, width)
    darkness[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return on_paper(darkness, generator)


def photo_of_font(font_path, digit, seed, pen=0, bend=False, canvas=CANVAS):
    """The digit written in a font, about 200 pixels tall, off-centre, as dark ink on a photo of
    paper; `pen` pixels of outline make its strokes that much wider on each side, and `bend`
    bends it as another writer would have written it."""
    generator = torch.Generator().manual_seed(seed)
    height, width = canvas
    font = ImageFont.truetype(str(font_path), 200)
    glyph = Image.new("L", (width, height))
    shift = torch.randint(-30, 31, (2,), generator=generator).tolist()
    ImageDraw.Draw(glyph).text((width / 2 + shift[0], height / 2 + shift[1]), str(digit),
                               font=font, fill=255, anchor="mm", stroke_width=pen,
                               stroke_fill=255)
    darkness = torch.frombuffer(bytearray(glyph.tobytes()), dtype=torch.uint8).float() / 255
    darkness = darkness.view(height, width)
    return on_paper(bent(darkness, generator, scale=10) if bend else darkness, generator)
