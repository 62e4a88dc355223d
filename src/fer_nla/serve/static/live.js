// The page's camera mode: frames from the browser's camera (getUserMedia) go to
// POST /v1/predict?stream=ID&t=SECONDS one at a time, so the rate is what the server keeps up
// with (at most MAX_FPS); the answer's faces are drawn on the frame that was sent, labelled
// "#track label probability", and each face track gets a card with its recent labels.
// The server keeps the tracks (fer_nla.serve.live), with the tracker fer-nla predict uses.
//
// What tests can check: the canvas's data-state ("live", then "stopped" or "error"),
// data-frames (frames answered), data-boxes (boxes on the last frame) and data-tracks
// (face tracks seen this session).
"use strict";

(function () {
  const BOX_COLOR = "rgb(0, 200, 255)"; // fer_nla.predict.annotate.BOX_COLOR
  const SEND_SIDE = 640; // frames are sent downsized to this longest side (faces stay well over 48 px)
  const MAX_FPS = 15;
  const HISTORY = 24; // labels shown per track
  const GONE_S = 3; // a track unseen this long leaves the list
  const PALETTE = ["#8d99ae", "#ffb703", "#8ecae6", "#457b9d", "#e63946", "#6a994e", "#9d4edd", "#bc6c25"];

  const button = document.getElementById("camera-button");
  const video = document.getElementById("camera");
  const canvas = document.getElementById("photo");
  const faceList = document.getElementById("faces");
  const statusLine = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const fileInput = document.getElementById("file");
  let session = null;
  let starting = false; // getUserMedia pending (the permission prompt): a second click waits

  function fail(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    canvas.dataset.state = "error";
    stop("The camera stopped.");
  }

  function colour(name, classes) {
    const index = classes.indexOf(name);
    return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
  }

  async function start() {
    if (starting) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      fail("This browser offers no camera to this page: open it as http://localhost or over https.");
      return;
    }
    let media;
    starting = true;
    button.disabled = true;
    try {
      media = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
    } catch (err) {
      fail(`The camera could not be opened (${err.name}: ${err.message}).`);
      return;
    } finally {
      starting = false;
      button.disabled = false;
    }
    video.srcObject = media;
    await video.play();
    errorBox.hidden = true;
    faceList.replaceChildren();
    const id = Math.random().toString(36).slice(2, 10);
    session = { media, stream: `page-${id}`, started: performance.now(), answered: 0, tracks: new Map() };
    Object.assign(canvas.dataset, { state: "live", frames: "0", boxes: "0", tracks: "0" });
    canvas.hidden = false;
    button.textContent = "Stop camera";
    fileInput.disabled = true;
    loop(session);
  }

  function stop(text) {
    if (!session) return;
    session.media.getTracks().forEach((track) => track.stop());
    session = null;
    video.srcObject = null;
    if (canvas.dataset.state === "live") canvas.dataset.state = "stopped";
    button.textContent = "Use camera";
    fileInput.disabled = false;
    statusLine.textContent = text || "Camera stopped.";
  }

  function grab() {
    const scale = Math.min(1, SEND_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const frame = document.createElement("canvas");
    frame.width = Math.max(1, Math.round(video.videoWidth * scale));
    frame.height = Math.max(1, Math.round(video.videoHeight * scale));
    frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
    return frame;
  }

  async function ask(s, frame) {
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
    const form = new FormData();
    form.append("file", blob, "frame.jpg");
    const t = ((performance.now() - s.started) / 1000).toFixed(3);
    const response = await fetch(`/v1/predict?stream=${s.stream}&t=${t}`,
      { method: "POST", body: form, headers: { "X-Fer-Nla-Client": "page" } });
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    return { response, body };
  }

  async function loop(s) {
    while (session === s) {
      const began = performance.now();
      if (!video.videoWidth) { await new Promise((r) => setTimeout(r, 50)); continue; }
      const frame = grab();
      let answer;
      try {
        answer = await ask(s, frame);
      } catch (err) {
        if (session === s) fail(`The server could not be reached (${err.message}). Is fer-nla serve still running?`);
        return;
      }
      if (session !== s) return;
      const { response, body } = answer;
      if (response.status === 503) { // busy: wait as told, then go on
        await new Promise((r) => setTimeout(r, 1000 * Number(response.headers.get("Retry-After") || 1)));
        continue;
      }
      if (!response.ok || body === null) {
        fail(`${response.status} ${response.statusText}: ${(body && body.detail) || "the answer was not JSON"}`);
        return;
      }
      draw(frame, body);
      remember(s, body);
      s.answered += 1;
      const seconds = (performance.now() - s.started) / 1000;
      canvas.dataset.frames = String(s.answered);
      statusLine.textContent = `Live: ${body.faces.length} face${body.faces.length === 1 ? "" : "s"}; ` +
        `${s.answered} frames answered, ${(s.answered / seconds).toFixed(1)} per second; model ${body.model.name}.`;
      const wait = 1000 / MAX_FPS - (performance.now() - began);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  function draw(frame, body) {
    canvas.width = frame.width;
    canvas.height = frame.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(frame, 0, 0);
    const fontSize = Math.max(12, Math.round(Math.max(frame.width, frame.height) / 45));
    ctx.font = `bold ${fontSize}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    for (const face of body.faces) {
      const [x, y, w, h] = face.box;
      ctx.strokeStyle = BOX_COLOR;
      ctx.lineWidth = 2;
      ctx.strokeRect(x, y, w, h);
      const text = `#${face.track_id} ${face.label} ${face.probs[face.label].toFixed(2)}`;
      const width = Math.ceil(ctx.measureText(text).width) + 8;
      const top = y - fontSize - 4 >= 0 ? y - fontSize - 4 : y;
      ctx.fillStyle = BOX_COLOR;
      ctx.fillRect(x - 1, top, width, fontSize + 4);
      ctx.fillStyle = "#000";
      ctx.fillText(text, x + 3, top + 2);
    }
    canvas.dataset.boxes = String(body.faces.length);
  }

  function remember(s, body) {
    const classes = body.model.classes;
    for (const face of body.faces) {
      let track = s.tracks.get(face.track_id);
      if (!track) {
        track = { labels: [], card: document.createElement("li") };
        track.card.className = "face live";
        track.card.dataset.track = String(face.track_id);
        s.tracks.set(face.track_id, track);
        faceList.append(track.card);
      }
      track.seen = face.time;
      track.labels = track.labels.concat([face.label]).slice(-HISTORY);
      const title = document.createElement("h2");
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = `#${face.track_id}`;
      const label = document.createElement("span");
      label.textContent = `${face.label} ${(100 * face.probs[face.label]).toFixed(0)}%`;
      title.append(tag, label);
      const history = document.createElement("div");
      history.className = "history";
      history.title = `the last ${track.labels.length} labels, oldest first`;
      for (const name of track.labels) {
        const cell = document.createElement("span");
        cell.style.background = colour(name, classes);
        cell.title = name;
        history.append(cell);
      }
      track.card.replaceChildren(title, history);
    }
    const now = body.faces.length ? body.faces[0].time : (performance.now() - s.started) / 1000;
    for (const [id, track] of s.tracks) { // gone tracks leave the page and the map: a long session stays small
      if (now - track.seen > GONE_S) {
        track.card.remove();
        s.tracks.delete(id);
      }
    }
    s.seen = Math.max(s.seen || 0, ...body.faces.map((face) => face.track_id + 1));
    canvas.dataset.tracks = String(s.seen); // tracks seen this session
  }

  button.addEventListener("click", () => (session ? stop() : start()));
})();
