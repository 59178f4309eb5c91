// semiyolo review: zoom and pan of the image on the canvas. Loaded before review.js, whose `state`, `canvas`, `$` and
// helpers these functions use when called.
"use strict";

const MAX_ZOOM = 16;
const WHEEL_PX_PER_DOUBLING = 300; // wheel travel (pixels) that doubles or halves the zoom

// ---- the view: zoom and pan. Image coordinates (0-1) -> canvas pixels: (view.x + x * view.scale) * width -------

function shownSize() {
  // the image's size on screen at the current zoom, in canvas (CSS) pixels
  return { W: canvas.clientWidth * state.view.scale, H: canvas.clientHeight * state.view.scale };
}

function toCanvas(x, y) {
  const v = state.view;
  return [(v.x + x * v.scale) * canvas.clientWidth, (v.y + y * v.scale) * canvas.clientHeight];
}

function toImage(px, py) {
  const v = state.view;
  return { x: (px / canvas.clientWidth - v.x) / v.scale, y: (py / canvas.clientHeight - v.y) / v.scale };
}

function showView() {
  // the image stays over the whole canvas: no empty margin when panning
  const v = state.view;
  v.x = Math.min(0, Math.max(1 - v.scale, v.x));
  v.y = Math.min(0, Math.max(1 - v.scale, v.y));
  canvas.dataset.zoom = v.scale.toFixed(4);
  $("zoom").textContent = v.scale === 1 ? "" : `zoom ${v.scale.toFixed(2)}\u00d7 (f: fit)`;
  draw();
}

function zoomAt(u, w, factor) {
  // zoom by `factor` keeping the point at (u, w) (fractions of the canvas) where it is
  const v = state.view;
  const scale = Math.min(MAX_ZOOM, Math.max(1, v.scale * factor));
  v.x = u - ((u - v.x) * scale) / v.scale;
  v.y = w - ((w - v.y) * scale) / v.scale;
  v.scale = scale;
  showView();
}

function resetView() {
  state.view = { scale: 1, x: 0, y: 0 };
  showView();
}

function onWheel(event) {
  if (!state.image) return;
  event.preventDefault();
  const rect = canvas.getBoundingClientRect();
  const unit = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 800 : 1; // lines, pages -> pixels
  const factor = 2 ** ((-event.deltaY * unit) / WHEEL_PX_PER_DOUBLING);
  zoomAt((event.clientX - rect.left) / rect.width, (event.clientY - rect.top) / rect.height, factor);
}
