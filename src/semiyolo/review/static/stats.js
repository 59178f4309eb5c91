// semiyolo review: the statistics panel (the server's counts, boxes per class, time on the image). Loaded before
// review.js, whose `state`, `$` and helpers these functions use when called.
"use strict";

// ---- statistics ------------------------------------------------------------------------------------------------

async function refreshStats() {
  try {
    state.stats = await api("GET", "/api/stats");
  } catch (err) {
    state.stats = null;
  }
  const s = state.stats;
  $("stats-reviewed").textContent = s ? `${s.reviewed} / ${s.images}` : "?";
  $("stats-accepted").textContent = s ? String(s.accepted) : "?";
  $("stats-edited").textContent = s ? String(s.edited) : "?";
  $("stats-empty").textContent = s ? String(s.no_objects) : "?";
}

function showClassCounts() {
  const counts = new Map();
  for (const box of state.boxes) counts.set(box.cls, (counts.get(box.cls) || 0) + 1);
  const rows = [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([cls, n]) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(cls);
    li.append(swatch, `${className(cls)}: ${n}`);
    return li;
  });
  $("class-counts").replaceChildren(...rows);
  $("stats-boxes").textContent = String(state.boxes.length);
}

function showTime() {
  const seconds = state.current ? state.seconds.get(state.current.name) || 0 : 0;
  $("stats-time").textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function tick() {
  // one second more on the image shown, while the page is visible
  if (!state.current || document.visibilityState !== "visible") return;
  state.seconds.set(state.current.name, (state.seconds.get(state.current.name) || 0) + 1);
  showTime();
}
