// semiyolo review: the page. No build step, no dependency; boxes are YOLO-normalised {cls, cx, cy, w, h} throughout.
"use strict";

const PALETTE = [
  "#ff3838", "#2c99a8", "#ff9d97", "#ff701f", "#cfd231", "#48f90a", "#92cc17", "#3ddb86", "#1a9334", "#00d4bb",
  "#ff6b6b", "#00c2ff", "#344593", "#6473ff", "#0018ec", "#8438ff", "#520085", "#cb38ff", "#ff95c8", "#ff37c7",
];
const HANDLE_PX = 7; // how close to a corner or an edge a press resizes
const MIN_BOX_PX = 3; // a drag shorter than this is a click

const state = {
  info: null,
  images: [], // [{name, worth, boxes, reviewed, pending, error}] in the server's order
  index: -1,
  current: null, // the server's answer for the open image
  boxes: [], // the boxes being edited
  drafts: new Map(), // name -> edited boxes not yet saved
  bases: new Map(), // name -> the version of the label file a draft was made from (a save sends it back)
  selected: -1,
  drawClass: 0,
  showDropped: true,
  image: null, // the decoded HTMLImageElement
  drag: null, // {mode: "draw" | "move" | "resize" | "pan", ...}
  busy: false,
  history: new Map(), // name -> {past, future}: box lists before the edits undone by Ctrl+Z / redone by Ctrl+Shift+Z
  view: { scale: 1, x: 0, y: 0 }, // zoom, and the image's top-left corner as a fraction of the canvas
  restored: new Map(), // name -> when the draft restored from localStorage was made (ms since 1970)
  seconds: new Map(), // name -> seconds the page was shown on the image
  stats: null, // the server's /api/stats
};

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

function colour(cls) {
  return PALETTE[cls % PALETTE.length];
}

function className(cls) {
  const names = state.info ? state.info.names : [];
  return cls < names.length ? names[cls] : String(cls);
}

function apiPath(prefix, name) {
  return prefix + name.split("/").map(encodeURIComponent).join("/");
}

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(`${response.status}: ${data.detail || response.statusText}`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = kind || "";
}

// ---- boxes ---------------------------------------------------------------------------------------------------

function editable(box) {
  return {
    cls: box.cls, cx: box.cx, cy: box.cy, w: box.w, h: box.h, score: box.score, doubt: box.doubt,
    likely_error: box.likely_error,
  };
}

function corners(box) {
  return { x1: box.cx - box.w / 2, y1: box.cy - box.h / 2, x2: box.cx + box.w / 2, y2: box.cy + box.h / 2 };
}

function fromCorners(x1, y1, x2, y2, cls) {
  const [a, b] = [Math.max(0, Math.min(x1, x2)), Math.min(1, Math.max(x1, x2))];
  const [c, d] = [Math.max(0, Math.min(y1, y2)), Math.min(1, Math.max(y1, y2))];
  return { cls, cx: (a + b) / 2, cy: (c + d) / 2, w: b - a, h: d - c, score: null, doubt: null, likely_error: null };
}

function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

function shown(item) {
  // whether the image on screen is `item` (openImage replaces state.current only once its labels have arrived)
  return Boolean(item && state.current && state.current.name === item.name);
}

function markEdited() {
  const item = state.images[state.index];
  if (!shown(item)) return; // still loading: the boxes on screen are the previous image's
  if (!state.bases.has(item.name)) state.bases.set(item.name, state.current.version);
  state.drafts.set(item.name, copyBoxes(state.boxes));
  storeDraft(item.name);
  markItem(state.index);
  draw();
}

function copyBoxes(boxes) {
  return boxes.map((b) => ({ ...b }));
}

// ---- drawing -------------------------------------------------------------------------------------------------

function fitCanvas() {
  if (!state.image) return;
  const stage = $("stage");
  const maxW = Math.max(100, stage.clientWidth);
  const maxH = Math.max(100, window.innerHeight - stage.getBoundingClientRect().top - 70);
  const scale = Math.min(maxW / state.image.naturalWidth, maxH / state.image.naturalHeight);
  const w = Math.round(state.image.naturalWidth * scale);
  const h = Math.round(state.image.naturalHeight * scale);
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  draw();
}

function boxLabel(box) {
  const score = box.score === null || box.score === undefined ? "" : ` ${box.score.toFixed(2)}`;
  const tag = errorTag(box);
  return `${className(box.cls)}${score}${tag ? ` \u00b7 ${tag}` : ""}`;
}

function drawBox(box, options) {
  const { x1, y1, x2, y2 } = corners(box);
  const [left, top] = toCanvas(x1, y1);
  const [right, bottom] = toCanvas(x2, y2);
  ctx.save();
  if (options.dim) ctx.globalAlpha = 0.25; // left out by the filters: still there, still saved
  ctx.strokeStyle = options.stroke;
  ctx.lineWidth = options.selected ? 3 : 2;
  if (options.dashed) ctx.setLineDash([5, 4]);
  ctx.strokeRect(left, top, right - left, bottom - top);
  ctx.setLineDash([]);
  const text = options.text;
  ctx.font = "12px system-ui, sans-serif";
  const tw = ctx.measureText(text).width + 6;
  const ty = top > 16 ? top - 16 : top;
  ctx.fillStyle = options.stroke;
  ctx.fillRect(left, ty, tw, 16);
  ctx.fillStyle = "#000";
  ctx.fillText(text, left + 3, ty + 12);
  if (options.selected) {
    ctx.fillStyle = "#fff";
    for (const [x, y] of [[left, top], [right, top], [left, bottom], [right, bottom]]) {
      ctx.fillRect(x - 4, y - 4, 8, 8);
    }
  }
  ctx.restore();
}

function draw() {
  ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  if (!state.image) return;
  const [left, top] = toCanvas(0, 0);
  const { W, H } = shownSize();
  ctx.drawImage(state.image, left, top, W, H);
  if (state.showDropped && state.current) {
    const suggested = missedSuggestions();
    for (const box of state.current.dropped) {
      if (box.likely_error === "missed" && !suggested.includes(box)) continue; // added: drawn as a box
      const missed = box.likely_error === "missed";
      const text = `${boxLabel(box)} dropped: ${box.dropped_by}${missed ? " (m adds it)" : ""}`;
      drawBox(box, { stroke: missed ? colour(box.cls) : "#bbbbbb", dashed: true, text, dim: !passesFilter(box) });
    }
  }
  state.boxes.forEach((box, i) => {
    if (i !== state.selected) drawBox(box, { stroke: colour(box.cls), text: boxLabel(box), dim: !passesFilter(box) });
  });
  if (state.selected >= 0) {
    const box = state.boxes[state.selected];
    drawBox(box, { stroke: colour(box.cls), text: boxLabel(box), selected: true });
  }
  if (state.drag && state.drag.mode === "draw") {
    const d = state.drag;
    drawBox(fromCorners(d.x0, d.y0, d.x, d.y, state.drawClass), {
      stroke: colour(state.drawClass), dashed: true, text: className(state.drawClass),
    });
  }
  showBoxInfo();
  showClassCounts();
  showFilterCount();
}

function showBoxInfo() {
  const box = state.boxes[state.selected];
  if (!box) {
    $("box-info").textContent = `${state.boxes.length} box(es); drag on the image to draw one`;
    return;
  }
  const facts = [`${className(box.cls)} (class ${box.cls})`, `cx ${box.cx.toFixed(4)} cy ${box.cy.toFixed(4)}`,
    `w ${box.w.toFixed(4)} h ${box.h.toFixed(4)}`];
  if (box.score !== null && box.score !== undefined) facts.push(`score ${box.score.toFixed(3)}`);
  if (box.doubt !== null && box.doubt !== undefined) facts.push(`doubt ${box.doubt.toFixed(3)}`);
  $("box-info").textContent = facts.join(" \u00b7 ");
}

// ---- mouse ---------------------------------------------------------------------------------------------------

function pointer(event) {
  // the pointer in image coordinates (0-1), through the view's zoom and pan
  const rect = canvas.getBoundingClientRect();
  const p = toImage(event.clientX - rect.left, event.clientY - rect.top);
  return { x: clamp01(p.x), y: clamp01(p.y) };
}

function handleAt(box, p) {
  // which sides of `box` a press at `p` grabs: {left, right, top, bottom}, or null
  const { W, H } = shownSize();
  const { x1, y1, x2, y2 } = corners(box);
  const near = (a, b, scale) => Math.abs(a - b) * scale <= HANDLE_PX;
  const inX = p.x * W >= x1 * W - HANDLE_PX && p.x * W <= x2 * W + HANDLE_PX;
  const inY = p.y * H >= y1 * H - HANDLE_PX && p.y * H <= y2 * H + HANDLE_PX;
  const sides = {
    left: inY && near(p.x, x1, W), right: inY && near(p.x, x2, W),
    top: inX && near(p.y, y1, H), bottom: inX && near(p.y, y2, H),
  };
  return sides.left || sides.right || sides.top || sides.bottom ? sides : null;
}

function boxAt(p) {
  // the smallest box under `p` (nested boxes stay reachable), or -1
  let best = -1;
  state.boxes.forEach((box, i) => {
    const { x1, y1, x2, y2 } = corners(box);
    const inside = p.x >= x1 && p.x <= x2 && p.y >= y1 && p.y <= y2;
    if (inside && (best < 0 || box.w * box.h < state.boxes[best].w * state.boxes[best].h)) best = i;
  });
  return best;
}

function onPointerDown(event) {
  const pan = event.button === 1 || (event.button === 0 && event.shiftKey);
  if (!state.image || (event.button !== 0 && !pan)) return;
  event.preventDefault(); // no middle-button autoscroll
  canvas.focus();
  canvas.setPointerCapture(event.pointerId);
  if (pan) {
    state.drag = { mode: "pan", x0: event.clientX, y0: event.clientY, view: { ...state.view } };
    return;
  }
  const p = pointer(event);
  const before = copyBoxes(state.boxes); // what Ctrl+Z brings back if this press edits
  const selected = state.boxes[state.selected];
  const sides = selected ? handleAt(selected, p) : null;
  if (sides) {
    state.drag = { mode: "resize", sides, start: corners(selected), x0: p.x, y0: p.y, before };
  } else if (boxAt(p) >= 0) {
    state.selected = boxAt(p);
    const box = state.boxes[state.selected];
    state.drag = { mode: "move", dx: p.x - box.cx, dy: p.y - box.cy, x0: p.x, y0: p.y, before };
  } else {
    state.selected = -1;
    state.drag = { mode: "draw", x0: p.x, y0: p.y, x: p.x, y: p.y };
  }
  draw();
}

function onPointerMove(event) {
  if (!state.drag) return;
  const d = state.drag;
  if (d.mode === "pan") {
    state.view.x = d.view.x + (event.clientX - d.x0) / canvas.clientWidth;
    state.view.y = d.view.y + (event.clientY - d.y0) / canvas.clientHeight;
    showView();
    return;
  }
  const p = pointer(event);
  const box = state.boxes[state.selected];
  const { W, H } = shownSize();
  const travel = Math.hypot((p.x - d.x0) * W, (p.y - d.y0) * H);
  if (d.mode !== "draw" && !d.moved && travel < MIN_BOX_PX) return; // a click selects, it does not edit
  if (d.mode === "draw") {
    d.x = p.x;
    d.y = p.y;
  } else if (d.mode === "move") {
    box.cx = Math.min(1 - box.w / 2, Math.max(box.w / 2, p.x - d.dx));
    box.cy = Math.min(1 - box.h / 2, Math.max(box.h / 2, p.y - d.dy));
    d.moved = true;
  } else {
    const c = { ...d.start };
    if (d.sides.left) c.x1 = p.x;
    if (d.sides.right) c.x2 = p.x;
    if (d.sides.top) c.y1 = p.y;
    if (d.sides.bottom) c.y2 = p.y;
    Object.assign(box, fromCorners(c.x1, c.y1, c.x2, c.y2, box.cls), { score: null, doubt: null });
    d.moved = true;
  }
  draw();
}

function onPointerUp(event) {
  const d = state.drag;
  state.drag = null;
  if (!d || d.mode === "pan") return;
  const item = state.images[state.index];
  const { W, H } = shownSize();
  if (d.mode === "draw") {
    const box = fromCorners(d.x0, d.y0, d.x, d.y, state.drawClass);
    if (box.w * W >= MIN_BOX_PX && box.h * H >= MIN_BOX_PX && shown(item)) {
      remember(item.name, state.boxes);
      state.boxes.push(box);
      state.selected = state.boxes.length - 1;
      markEdited();
      return;
    }
  } else if (d.moved && shown(item)) {
    remember(item.name, d.before);
    Object.assign(state.boxes[state.selected], { score: null, likely_error: null }); // the person's box now
    markEdited();
    return;
  }
  draw();
}

// ---- actions -------------------------------------------------------------------------------------------------

function setClass(cls) {
  if (!state.info || cls >= state.info.names.length) {
    setStatus(`class ${cls} does not exist (${state.info ? state.info.names.length : 0} classes)`, "error");
    return;
  }
  state.drawClass = cls;
  $("class-picker").value = String(cls);
  const box = state.boxes[state.selected];
  const item = state.images[state.index];
  if (box && box.cls !== cls && shown(item)) {
    remember(item.name, state.boxes);
    box.cls = cls;
    box.score = null;
    box.likely_error = null;
    markEdited();
  }
}

function deleteSelected() {
  const item = state.images[state.index];
  if (state.selected < 0 || !shown(item)) return;
  remember(item.name, state.boxes);
  state.boxes.splice(state.selected, 1);
  state.selected = Math.min(state.selected, state.boxes.length - 1);
  markEdited();
}

function selectNextBox(step) {
  if (!state.boxes.length) return;
  state.selected = (state.selected + step + state.boxes.length) % state.boxes.length;
  draw();
}

function resetImage() {
  const item = state.images[state.index];
  if (!shown(item)) return;
  if (state.drafts.has(item.name)) remember(item.name, state.boxes); // Ctrl+Z brings the edits back
  forgetDraft(item.name);
  state.boxes = state.current.boxes.map(editable);
  state.selected = -1;
  markItem(state.index);
  draw();
}

async function save(action) {
  const item = state.images[state.index];
  if (state.busy || !shown(item)) return;
  state.busy = true;
  const boxes = action === "no_objects" ? [] : state.boxes.map(({ cls, cx, cy, w, h }) => ({ cls, cx, cy, w, h }));
  const version = state.bases.has(item.name) ? state.bases.get(item.name) : state.current.version;
  const before = copyBoxes(state.boxes);
  try {
    const result = await api("PUT", apiPath("/api/labels/", item.name), { action, boxes, version });
    item.reviewed = true;
    if (action === "no_objects" && before.length) remember(item.name, before); // Ctrl+Z there brings them back
    forgetDraft(item.name);
    refreshStats();
    const clipped = result.clipped ? `, ${result.clipped} clipped to the image` : "";
    setStatus(`${item.name}: ${result.action}, ${result.boxes} box(es)${clipped} written to ${result.label}`, "ok");
    markItem(state.images.indexOf(item));
    await openImage(nextIndex(state.index, true));
  } catch (err) {
    if (err.status === 409) {
      keepConflictingDraft(item, boxes, err.data, action);
    } else {
      setStatus(`${item.name}: not saved: ${err.message}`, "error");
    }
  } finally {
    state.busy = false;
  }
}

function keepConflictingDraft(item, boxes, conflict, action) {
  // another tab or program saved this image since it was read: the person's boxes (none for "no objects") stay
  // a draft, based on the version now on disk (saving again writes them over it), and `r` shows the saved ones
  const open = state.images[state.index] === item;
  const draft = open && action !== "no_objects" ? state.boxes : boxes.map((b) => ({ ...b, score: null, doubt: null }));
  if (open && action === "no_objects" && state.boxes.length) remember(item.name, state.boxes);
  state.drafts.set(item.name, copyBoxes(draft));
  state.bases.set(item.name, conflict.version);
  storeDraft(item.name);
  if (open && state.current) {
    const saved = conflict.reviewed ? conflict.boxes : state.current.proposal;
    state.current = { ...state.current, boxes: saved, reviewed: conflict.reviewed, version: conflict.version };
  }
  markItem(state.images.indexOf(item));
  setStatus(
    `${item.name}: not saved: its labels were saved elsewhere (another tab or program) since this page read ` +
      "them; your boxes are kept here: press a to save them over those, or r to see the saved ones instead",
    "error",
  );
  if (open && action === "no_objects") {
    state.boxes = [];
    draw();
  }
}

function nextIndex(from, unreviewed) {
  for (let i = from + 1; i < state.images.length; i++) {
    if (!unreviewed || !state.images[i].reviewed) return i;
  }
  return Math.min(from + 1, state.images.length - 1);
}

// ---- images --------------------------------------------------------------------------------------------------

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = url;
  });
}

async function openImage(index) {
  if (index < 0 || index >= state.images.length) return;
  const previous = state.index;
  state.index = index;
  const item = state.images[index];
  canvas.dataset.ready = "";
  showActive(previous);
  $("title").textContent = item.name;
  try {
    const [labels, image] = await Promise.all([
      api("GET", apiPath("/api/labels/", item.name)),
      loadImage(apiPath("/api/pixels/", item.name)),
    ]);
    if (state.index !== index) return; // the reviewer moved on meanwhile
    state.current = labels;
    state.image = image;
    state.boxes = state.drafts.has(item.name) ? copyBoxes(state.drafts.get(item.name)) : labels.boxes.map(editable);
    state.selected = -1;
    state.view = { scale: 1, x: 0, y: 0 }; // each image opens fitted
    const size = labels.width ? ` \u00b7 ${labels.width}\u00d7${labels.height}px` : "";
    const worth = labels.worth === null || labels.worth === undefined ? "" : ` \u00b7 worth ${labels.worth.toFixed(3)}`;
    const known = labels.reviewed ? " \u00b7 reviewed" : "";
    $("title").textContent = `${item.name}${size}${worth}${known}`;
    setStatus(labels.error || labels.note || "", labels.error ? "error" : "");
    showDraftNote(item.name);
    fitCanvas();
    showView();
    showTime();
    canvas.dataset.ready = item.name;
    preload(index + 1);
  } catch (err) {
    setStatus(`${item.name}: ${err.message}`, "error");
  }
}

function showDraftNote(name) {
  const time = state.restored.get(name);
  $("draft-note").textContent = time === undefined ? "" :
    `A draft of this image kept in this browser (unsaved, from ${new Date(time).toLocaleString()}) was restored: ` +
    "a saves it, r drops it for the labels on the server.";
}

function preload(index) {
  const item = state.images[index];
  if (item) new Image().src = apiPath("/api/pixels/", item.name);
}

function listItem(item, i) {
  const li = document.createElement("li");
  li.dataset.index = String(i);
  const name = document.createElement("span");
  name.className = "name";
  const worth = document.createElement("span");
  worth.className = "worth";
  li.append(name, worth);
  fillItem(li, item, i);
  return li;
}

function fillItem(li, item, i) {
  li.classList.toggle("active", i === state.index);
  li.classList.toggle("reviewed", item.reviewed);
  li.classList.toggle("pending", item.pending);
  li.classList.toggle("error", Boolean(item.error));
  li.classList.toggle("edited", state.drafts.has(item.name));
  li.firstChild.textContent = item.name;
  li.firstChild.title = item.error || item.name;
  const worth = item.worth === null ? "" : `${item.worth.toFixed(2)} \u00b7 ${item.boxes}`;
  li.lastChild.textContent = item.pending ? "\u2026" : worth;
}

function markItem(i) {
  // one list entry redrawn (a list of thousands is built once, by renderList)
  const li = $("images").children[i];
  if (li) fillItem(li, state.images[i], i);
  const done = state.images.filter((item) => item.reviewed).length;
  $("progress").textContent = `${done} / ${state.images.length} reviewed`;
}

function showActive(previous) {
  if (previous >= 0) markItem(previous);
  markItem(state.index);
  const active = $("images").children[state.index];
  if (active) active.scrollIntoView({ block: "nearest" });
}

function renderList() {
  $("images").replaceChildren(...state.images.map(listItem));
  showActive(-1);
}

async function refreshList() {
  const listing = await api("GET", "/api/images");
  const reviewedHere = new Set(state.images.filter((i) => i.reviewed).map((i) => i.name));
  const current = state.images[state.index];
  state.images = listing.images.map((i) => ({ ...i, reviewed: i.reviewed || reviewedHere.has(i.name) }));
  state.index = current ? state.images.findIndex((i) => i.name === current.name) : state.index;
  renderList();
  $("source").title = `order: ${listing.order}`; // a run calibrating its scores says so until it has
  if (listing.pending > 0) setTimeout(refreshList, 2000); // a run still labelling: its order fills in
  return listing;
}

// ---- keys ----------------------------------------------------------------------------------------------------

const KEYS = {
  a: () => save("accept"),
  Enter: () => save("accept"),
  n: () => save("no_objects"),
  Delete: deleteSelected,
  Backspace: deleteSelected,
  x: deleteSelected,
  j: () => openImage(state.index + 1),
  ArrowRight: () => openImage(state.index + 1),
  ArrowDown: () => openImage(state.index + 1),
  k: () => openImage(state.index - 1),
  ArrowLeft: () => openImage(state.index - 1),
  ArrowUp: () => openImage(state.index - 1),
  Escape: () => { state.selected = -1; draw(); },
  r: resetImage,
  s: acceptAboveScore,
  m: addMissed,
  d: () => { state.showDropped = !state.showDropped; draw(); },
};

const ZOOM_KEYS = {
  f: resetView,
  "+": () => zoomAt(0.5, 0.5, 2 ** 0.5),
  "=": () => zoomAt(0.5, 0.5, 2 ** 0.5),
  "-": () => zoomAt(0.5, 0.5, 2 ** -0.5),
};

function onHistoryKey(event) {
  // Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo (Cmd on a Mac); true when the key was one of them
  if (!(event.ctrlKey || event.metaKey) || event.altKey) return false;
  const key = event.key.toLowerCase();
  if (key !== "z" && key !== "y") return false;
  stepHistory(key === "z" && !event.shiftKey);
  return true;
}

function onKey(event) {
  if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement) return;
  if (onHistoryKey(event)) {
    event.preventDefault();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (ZOOM_KEYS[event.key] && state.image) {
    ZOOM_KEYS[event.key]();
    event.preventDefault();
    return;
  }
  if (event.key === "Tab") {
    selectNextBox(event.shiftKey ? -1 : 1);
  } else if (/^[0-9]$/.test(event.key)) {
    setClass(Number(event.key));
  } else if (KEYS[event.key]) {
    KEYS[event.key]();
  } else {
    return;
  }
  event.preventDefault();
}

// ---- start ---------------------------------------------------------------------------------------------------

function buildClassPicker() {
  const picker = $("class-picker");
  const legend = $("legend");
  state.info.names.forEach((name, cls) => {
    picker.append(new Option(`${cls < 10 ? cls + ": " : ""}${name}`, String(cls)));
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(cls);
    li.append(swatch, `${cls}: ${name}`);
    legend.append(li);
  });
  picker.addEventListener("change", () => {
    setClass(Number(picker.value));
    picker.blur();
    canvas.focus();
  });
}

function bindControls() {
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", onPointerUp);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("mousedown", (event) => event.button === 1 && event.preventDefault()); // no autoscroll
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", fitCanvas);
  $("images").addEventListener("click", (event) => {
    const li = event.target.closest("li");
    if (li) openImage(Number(li.dataset.index));
  });
  $("accept").addEventListener("click", () => save("accept"));
  $("no-objects").addEventListener("click", () => save("no_objects"));
  $("delete").addEventListener("click", deleteSelected);
  $("reset").addEventListener("click", resetImage);
  $("undo").addEventListener("click", () => stepHistory(true));
  $("redo").addEventListener("click", () => stepHistory(false));
  $("fit").addEventListener("click", resetView);
  $("prev").addEventListener("click", () => openImage(state.index - 1));
  $("next").addEventListener("click", () => openImage(state.index + 1));
}

async function start() {
  try {
    state.info = await api("GET", "/api/info");
    const refused = state.info.refused ? ` \u00b7 ${state.info.refused} linked outside, not served` : "";
    $("source").textContent = `${state.info.kind}: ${state.info.source} \u2192 ${state.info.reviewed}${refused}`;
    $("source").title = `order: ${state.info.order}`;
    buildClassPicker();
    buildFilters();
    bindControls();
    await refreshList();
    try {
      restoreDrafts();
    } catch (err) {
      setStatus(`the drafts kept in this browser cannot be read: ${err.message}`, "error");
    }
    renderList();
    refreshStats();
    setInterval(tick, 1000);
    await openImage(nextIndex(-1, true));
  } catch (err) {
    setStatus(`cannot start: ${err.message}`, "error");
  }
}

start();
