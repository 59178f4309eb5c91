// semiyolo review: undo / redo of the edits on each image, and the drafts kept in the browser (localStorage).
// Loaded before review.js, whose `state`, `canvas`, `$` and helpers these functions use when called.
"use strict";

const HISTORY_LIMIT = 200; // undo steps kept per image
const DRAFT_PREFIX = "semiyolo-review-draft ";

// ---- undo / redo: one history of box lists per image, kept while the page is open -----------------------------

function historyOf(name) {
  if (!state.history.has(name)) state.history.set(name, { past: [], future: [] });
  return state.history.get(name);
}

function remember(name, before) {
  // `before`: the boxes of `name` before an edit, which Ctrl+Z brings back
  const history = historyOf(name);
  history.past.push(copyBoxes(before));
  if (history.past.length > HISTORY_LIMIT) history.past.shift();
  history.future = [];
}

function stepHistory(back) {
  const item = state.images[state.index];
  if (!shown(item) || state.drag) return;
  const history = historyOf(item.name);
  const [from, to] = back ? [history.past, history.future] : [history.future, history.past];
  if (!from.length) {
    setStatus(`${item.name}: nothing to ${back ? "undo" : "redo"}`);
    return;
  }
  to.push(copyBoxes(state.boxes));
  state.boxes = from.pop();
  state.selected = -1;
  markEdited();
  setStatus(`${item.name}: ${back ? "undone" : "redone"} (${history.past.length} to undo, ${history.future.length} to redo)`);
}

// ---- drafts kept in the browser (localStorage) until saved or reset --------------------------------------------

function draftKey(name) {
  return DRAFT_PREFIX + JSON.stringify([state.info.source, state.info.reviewed]) + " " + name;
}

function storeDraft(name) {
  const draft = { boxes: state.drafts.get(name), base: state.bases.get(name), time: Date.now() };
  try {
    localStorage.setItem(draftKey(name), JSON.stringify(draft));
  } catch (err) {
    setStatus(`${name}: the draft is not kept in this browser (${err.message}): save it before leaving`, "error");
  }
}

function forgetDraft(name) {
  state.drafts.delete(name);
  state.bases.delete(name);
  state.restored.delete(name);
  if (state.current && state.current.name === name) showDraftNote(name);
  try {
    localStorage.removeItem(draftKey(name));
  } catch (err) {
    // storage unavailable: nothing was kept
  }
}

function restoreDrafts() {
  // the drafts this browser kept for the images served from this source into this reviewed folder
  const served = new Set(state.images.map((item) => item.name));
  const prefix = draftKey("");
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    const name = key.startsWith(prefix) ? key.slice(prefix.length) : null;
    if (!served.has(name) || state.drafts.has(name)) continue;
    try {
      const draft = JSON.parse(localStorage.getItem(key));
      if (!Array.isArray(draft.boxes) || typeof draft.base !== "string") continue;
      state.drafts.set(name, draft.boxes);
      state.bases.set(name, draft.base);
      state.restored.set(name, draft.time);
    } catch (err) {
      // not a draft of this page: left alone
    }
  }
}
