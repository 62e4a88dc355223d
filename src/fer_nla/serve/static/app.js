// The page of `fer-nla serve`: send a photo to POST /v1/predict, draw it with a box per face and
// a bar chart of each face's expression probabilities. No framework, no build step.
//
// What tests can check: the canvas's data-state ("idle", "loading", "done", "error") and
// data-boxes (how many face boxes are drawn on it).
"use strict";

(function () {
  const BOX_COLOR = "rgb(0, 200, 255)"; // fer_nla.predict.annotate.BOX_COLOR
  const MAX_CANVAS_SIDE = 1600; // larger photos are drawn downsized

  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const statusLine = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const canvas = document.getElementById("photo");
  const faceList = document.getElementById("faces");

  function setState(state, text) {
    canvas.dataset.state = state;
    statusLine.textContent = text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    setState("error", "The photo was not analysed.");
  }

  // Before each photo: no error, no faces, and no earlier photo left on screen (it would read as
  // the photo an error is about).
  function clear() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    faceList.replaceChildren();
    canvas.dataset.boxes = "0";
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    canvas.width = 0;
    canvas.height = 0;
    canvas.hidden = true;
  }

  function megabytes(bytes) {
    const text = (bytes / 1e6).toFixed(bytes < 1e6 ? 2 : 1);
    return text.replace(/\.0+$/, "") + " MB";
  }

  function detailText(body) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && body.detail !== undefined) return JSON.stringify(body.detail);
    return "";
  }

  // The photo as the browser decodes it, or null when it cannot (TIFF in most browsers).
  function loadImage(file) {
    return new Promise((resolve) => {
      const url = URL.createObjectURL(file);
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => resolve(null);
      image.src = url;
    });
  }

  function drawPhoto(image, result) {
    const { width, height } = result.image;
    const scale = Math.min(1, MAX_CANVAS_SIDE / Math.max(width, height));
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    canvas.hidden = false;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#e9edf1";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (image) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const line = 2 * Math.max(1, Math.round(Math.max(canvas.width, canvas.height) / 800));
    const fontSize = Math.max(12, Math.round(Math.max(canvas.width, canvas.height) / 60));
    ctx.font = `bold ${fontSize}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    let drawn = 0;
    result.faces.forEach((face, index) => {
      const [x, y, w, h] = face.box.map((v) => Math.round(v * scale));
      ctx.strokeStyle = BOX_COLOR;
      ctx.lineWidth = line;
      ctx.strokeRect(x, y, w, h);
      const tag = String(index + 1);
      const tagWidth = Math.ceil(ctx.measureText(tag).width) + 8;
      const tagTop = y - fontSize - 4 >= 0 ? y - fontSize - 4 : y;
      ctx.fillStyle = BOX_COLOR;
      ctx.fillRect(x - line / 2, tagTop, tagWidth, fontSize + 4);
      ctx.fillStyle = "#000";
      ctx.fillText(tag, x - line / 2 + 4, tagTop + 2);
      drawn += 1;
    });
    canvas.dataset.boxes = String(drawn);
  }

  function faceCard(face, index, classes) {
    const card = document.createElement("li");
    card.className = "face";
    const title = document.createElement("h2");
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = String(index + 1);
    const label = document.createElement("span");
    const score = face.score === null || face.score === undefined ? "" : `, detector ${face.score.toFixed(2)}`;
    label.textContent = `${face.label} ${(100 * face.probs[face.label]).toFixed(0)}%${score}`;
    title.append(tag, label);
    card.append(title);
    for (const name of classes) {
      const p = face.probs[name] || 0;
      const row = document.createElement("div");
      row.className = name === face.label ? "bar top" : "bar";
      const nameCell = document.createElement("span");
      nameCell.textContent = name;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.display = "block";
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = `${(100 * p).toFixed(1)}%`;
      row.append(nameCell, track, value);
      row.title = `${name}: ${p.toFixed(4)}`;
      card.append(row);
    }
    return card;
  }

  function summary(result, seconds) {
    const n = result.faces.length;
    const parts = [`${n} face${n === 1 ? "" : "s"} in the ${result.image.width}×${result.image.height} photo`];
    const small = (result.dropped && result.dropped.small) || 0;
    if (small) parts.push(`${small} more too small to classify`);
    parts.push(`model ${result.model.name}, ${seconds.toFixed(2)} s`);
    return parts.join("; ") + ".";
  }

  let latest = 0; // the photo sent last: an earlier one's late answer is not drawn over it

  async function send(file) {
    if (!file) return;
    const mine = ++latest;
    clear();
    setState("loading", `Sending ${file.name} (${megabytes(file.size)})…`);
    const form = new FormData();
    form.append("file", file, file.name);
    const started = performance.now();
    let response;
    let body = null;
    try {
      // the header asks for error advice worded for this page (fer_nla.serve.uploads.PAGE_CLIENT_HEADER)
      response = await fetch("/v1/predict", { method: "POST", body: form, headers: { "X-Fer-Nla-Client": "page" } });
    } catch (err) {
      if (mine === latest) showError(`The server could not be reached (${err.message}). Is fer-nla serve still running?`);
      return;
    }
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (mine !== latest) return;
    if (!response.ok || body === null) {
      const detail = detailText(body) || "the answer was not JSON";
      const retry = response.headers.get("Retry-After");
      showError(`${response.status} ${response.statusText}: ${detail}${retry ? ` (retry after ${retry} s)` : ""}`);
      return;
    }
    const image = await loadImage(file);
    if (mine !== latest) return;
    drawPhoto(image, body);
    body.faces.forEach((face, index) => faceList.append(faceCard(face, index, body.model.classes)));
    if (!body.faces.length) {
      const note = document.createElement("li");
      note.className = "note";
      note.textContent = "No face found in this photo.";
      faceList.append(note);
    }
    if (body.image.frames > 1) {
      const note = document.createElement("li");
      note.className = "note";
      note.textContent = `This is an animated image of ${body.image.frames} frames: only its first frame was analysed.`;
      faceList.append(note);
    }
    let text = summary(body, (performance.now() - started) / 1000);
    if (!image) text += " Your browser cannot display this image format, so the boxes are drawn on a blank canvas.";
    setState("done", text);
  }

  input.addEventListener("change", () => send(input.files[0]));
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (event) => {
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file && canvas.dataset.state !== "live") send(file); // the camera mode owns the canvas while it runs
  });

  fetch("/healthz").then((r) => r.json()).then((health) => {
    document.getElementById("model").textContent = `model: ${health.model} (${health.model_version}) · fer-nla ${health.version}`;
    const limits = health.limits;
    document.getElementById("limits").textContent =
      `, up to ${megabytes(limits.max_upload_bytes)} and ${(limits.max_pixels / 1e6).toFixed(0)} megapixels`;
  }).catch(() => {
    document.getElementById("model").textContent = "model: unknown (the server did not answer /healthz)";
  });
})();
