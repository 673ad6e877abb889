// The drawing pad: a canvas to draw a digit on with a mouse, a pen or a finger, and beside it
// what the network reads in it. When a stroke ends, the drawing goes to the kernel, which
// prepares it as lesson two prepares a photo and answers with the image the network saw and its
// ten probabilities. While the kernel reads one drawing, new strokes only mark the drawing as
// changed: the latest is sent when the answer comes, so nothing queues up. Everything is drawn
// here, with the page's own fonts: nothing is fetched from anywhere.

const SIZE = 280; // the canvas's pixels a side, ten of MNIST's
const PEN = 18; // pixels wide: about MNIST's pen, once the drawing is made 28 pixels high
const PATIENCE = 5000; // milliseconds to wait for the kernel before saying it does not answer

function element(tag, className, text) {
  const made = document.createElement(tag);
  made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

function digitImage(pixels) {
  // The 28 × 28 image the network saw, light on black as MNIST's digits are, drawn 4 times larger.
  const canvas = element("canvas", "mnistlab-pad-seen");
  canvas.width = canvas.height = 28;
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  pixels.forEach((value, index) => {
    image.data.set([255 * value, 255 * value, 255 * value, 255], 4 * index);
  });
  context.putImageData(image, 0, 0);
  return canvas;
}

function bars(reading) {
  // Ten bars, one a digit, as long as its probability; the best guess in red.
  const chart = element("div", "mnistlab-pad-bars");
  reading.probabilities.forEach((probability, digit) => {
    const bar = element("div", "mnistlab-pad-bar");
    const fill = element("div", digit === reading.guess ? "mnistlab-pad-fill best" : "mnistlab-pad-fill");
    fill.style.height = `${Math.max(1, 100 * probability)}%`;
    bar.append(fill, element("span", "", String(digit)));
    chart.append(bar);
  });
  return chart;
}

function show(answer, place) {
  place.replaceChildren();
  if (answer.image) {
    const seen = element("figure", "mnistlab-pad-figure");
    seen.append(digitImage(answer.image), element("figcaption", "", "what the network sees"));
    place.append(seen);
  }
  for (const reading of answer.readings || []) {
    const block = element("div", "mnistlab-pad-reading");
    block.append(element("div", "mnistlab-pad-guess", `${reading.name}: ${reading.says}`), bars(reading));
    place.append(block);
  }
  for (const line of [answer.message, answer.saved]) {
    if (line) place.append(element("p", "mnistlab-pad-message", line));
  }
}

function render({ model, el }) {
  const canvas = element("canvas", "mnistlab-pad-canvas");
  canvas.width = canvas.height = SIZE;
  const context = canvas.getContext("2d");
  const clear = element("button", "mnistlab-pad-button", "Clear");
  const save = element("button", "mnistlab-pad-button", "Save as PNG");
  const answer = element("div", "mnistlab-pad-answer");
  const left = element("div", "mnistlab-pad-left");
  left.append(canvas, element("div", "mnistlab-pad-buttons"));
  left.lastChild.append(clear, save);
  el.classList.add("mnistlab-pad");
  el.append(left, answer);

  let drawing = false, waiting = false, changed = false, drawn = false, silence = null;

  function blank() {
    context.fillStyle = "white"; // paper, as a photo of a digit has it
    context.fillRect(0, 0, SIZE, SIZE);
    context.strokeStyle = "black";
    context.lineWidth = PEN;
    context.lineCap = context.lineJoin = "round";
  }

  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * SIZE / box.width, (event.clientY - box.top) * SIZE / box.height];
  }

  function silent() {
    waiting = false;
    show({ message: "The kernel does not answer: if it restarted, or the notebook was " +
                    "reopened, run the cells above and this one again." }, answer);
  }

  function ask() {
    if (waiting) {
      changed = true; // sent when the answer to the drawing before it comes
      return;
    }
    waiting = true;
    changed = false;
    clearTimeout(silence);
    silence = setTimeout(silent, PATIENCE);
    try {
      model.set("drawing", canvas.toDataURL("image/png"));
      model.save_changes();
    } catch (error) { // the kernel's side of the pad is gone
      clearTimeout(silence);
      silent();
    }
  }

  canvas.addEventListener("pointerdown", (event) => {
    drawing = drawn = true;
    canvas.setPointerCapture(event.pointerId);
    context.beginPath();
    context.moveTo(...at(event));
    context.lineTo(...at(event)); // a dot, where the pointer only touches
    context.stroke();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    context.lineTo(...at(event));
    context.stroke();
  });
  for (const end of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(end, () => {
      if (!drawing) return;
      drawing = false;
      ask();
    });
  }
  clear.addEventListener("click", () => {
    blank();
    drawn = false;
    show({ message: "Draw a digit in the box, as large as the box." }, answer);
  });
  save.addEventListener("click", () => {
    if (!drawn) {
      show({ message: "Draw a digit first, then save it." }, answer);
      return;
    }
    model.set("saves", model.get("saves") + 1);
    model.save_changes();
  });
  model.on("change:answer", () => {
    waiting = false;
    clearTimeout(silence);
    show(model.get("answer"), answer);
    if (changed) ask();
  });

  blank();
  show(model.get("answer"), answer);
  return () => clearTimeout(silence);
}

export default { render };
