// semiyolo review: box-level doubts. Each box's likely error (the server's `likely_error`) shown beside its label;
// filters by class, score range and error type that dim the boxes they leave out (never delete them: a save writes
// every box, dimmed or not); "accept every box scoring at least the filter's lowest score"; and the candidates the
// filters dropped that no kept box overlaps, drawn dashed as possibly missed, added one by one with `m`.
// Loaded before review.js, whose `state`, `$`, `canvas` and helpers these functions use when called.
"use strict";

const ERROR_TAGS = {
  wrong_class: "wrong class?",
  spurious: "spurious?",
  badly_located: "badly located?",
  missed: "missed?",
};

function errorTag(box) {
  return ERROR_TAGS[box.likely_error] || "";
}

function scoreRange() {
  // the score filter's [low, high]; an empty or malformed field is the whole range
  const low = Number.parseFloat($("filter-min").value);
  const high = Number.parseFloat($("filter-max").value);
  return [Number.isFinite(low) ? low : 0, Number.isFinite(high) ? high : 1];
}

function passesFilter(box) {
  // class, score range (a box without a score, the person's, passes it) and error type ("none": no likely error)
  const cls = $("filter-class").value;
  const error = $("filter-error").value;
  const [low, high] = scoreRange();
  if (cls !== "" && box.cls !== Number(cls)) return false;
  if (error !== "" && (box.likely_error || "none") !== error) return false;
  const scored = box.score !== null && box.score !== undefined;
  return !scored || (box.score >= low && box.score <= high);
}

function showFilterCount() {
  const matching = state.boxes.filter(passesFilter).length;
  canvas.dataset.dimmed = String(state.boxes.length - matching);
  $("filter-count").textContent = matching === state.boxes.length ? "" : `${matching} of ${state.boxes.length} match`;
}

function sameBox(a, b) {
  return a.cls === b.cls && ["cx", "cy", "w", "h"].every((k) => Math.abs(a[k] - b[k]) < 1e-6);
}

function missedSuggestions() {
  // the possibly missed candidates not yet added to the boxes
  if (!state.current) return [];
  return state.current.dropped.filter((d) => d.likely_error === "missed" && !state.boxes.some((b) => sameBox(b, d)));
}

function addMissed() {
  const item = state.images[state.index];
  const [candidate] = missedSuggestions().sort((a, b) => (b.score || 0) - (a.score || 0));
  if (!shown(item) || !candidate) {
    setStatus("no possibly missed candidate left on this image");
    return;
  }
  remember(item.name, state.boxes);
  state.boxes.push({ ...editable(candidate), likely_error: null });
  state.selected = state.boxes.length - 1;
  markEdited();
  setStatus(`added a possibly missed ${className(candidate.cls)} (score ${(candidate.score || 0).toFixed(2)})`);
}

function acceptAboveScore() {
  // keep the boxes scoring at least the filter's lowest score (and those without a score: the person's), save
  const item = state.images[state.index];
  if (state.busy || !shown(item)) return;
  const [low] = scoreRange();
  const kept = state.boxes.filter((b) => b.score === null || b.score === undefined || b.score >= low);
  if (kept.length !== state.boxes.length) {
    remember(item.name, state.boxes);
    state.boxes = kept;
    state.selected = -1;
    markEdited();
  }
  save("accept");
}

function buildFilters() {
  const classes = $("filter-class");
  state.info.names.forEach((name, cls) => classes.append(new Option(`${cls}: ${name}`, String(cls))));
  const errors = $("filter-error");
  for (const [value, tag] of Object.entries(ERROR_TAGS)) errors.append(new Option(tag, value));
  errors.append(new Option("no doubt", "none"));
  for (const id of ["filter-class", "filter-error", "filter-min", "filter-max"]) {
    $(id).addEventListener("input", draw);
    $(id).addEventListener("change", (event) => {
      draw();
      if (event.target instanceof HTMLSelectElement) canvas.focus();
    });
  }
  $("accept-above").addEventListener("click", acceptAboveScore);
  $("add-missed").addEventListener("click", addMissed);
}
