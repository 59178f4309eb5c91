"""Run reuse: each run of the protocol trains once, also across processes and in a moved or copied folder.

A finished run leaves its table row (``ablation_row.json``, written last); a later call with the same settings
reuses it and one with other settings is refused. Each run folder is claimed with its run lock
(:class:`~semiyolo.runfiles.RunLock`) before it is looked at and held until its row is written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import BEFORE_THE_KEY, SUPERVISED_KEYS, SemiConfig
from ..data import write_atomically
from ..errors import ConfigError
from ..integrations.ultralytics import prepare, train
from ..runfiles import LOCK_NAME, RunLock
from .arms import CONVERGED, FULLY_LABELED, FULLY_LABELED_CONTINUED
from .protocol import ONLINE_MODE
from .run_folder import history, run_args

ROW_FILE = "ablation_row.json"  # a finished run's table row, written last
LOCK_POLL_SECONDS = 5.0  # how often a run another process trains is looked at again, when it is waited for


def _fingerprint(run_cfg: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(run_cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings_differ(run_dir: Path, row: dict[str, Any], run_cfg: dict[str, Any], out: Path | None = None) -> list[str]:
    """The settings of ``run_cfg`` that a finished run (its ``args.yaml`` and the ``semi`` block of its row) had
    otherwise: model, data, every given training argument, and the ``semi`` keys its mode reads
    (:data:`~semiyolo.config.SUPERVISED_KEYS` unless online). A key the run predates counts as what runs did
    before it existed (:data:`~semiyolo.config.BEFORE_THE_KEY`), else as its default. With ``out``, the ablation
    folder the run lies in, paths inside the folder it trained in count relative to it (a moved or copied
    ablation folder)."""
    args = run_args(run_dir) if (run_dir / "args.yaml").is_file() else {}
    earlier = _earlier_folder(run_dir, out, args.get("save_dir") or row.get("save_dir")) if out else None

    def same(stored: Any, given: Any) -> bool:
        return _same(_moved(stored, earlier, out) if earlier else stored, given)

    given = {"model": run_cfg["model"], "data": run_cfg["data"], **run_cfg["train"]}
    differ = [k for k, v in given.items() if k not in ("project", "name", "exist_ok") and not same(args.get(k), v)]
    stored, defaults = row.get("semi", {}), {**SemiConfig().model_dump(), **BEFORE_THE_KEY}
    online = run_cfg["semi"].get("mode") == ONLINE_MODE
    keys = [k for k in run_cfg["semi"] if online or k in SUPERVISED_KEYS]
    return differ + [f"semi.{k}" for k in keys if not same(stored.get(k, defaults.get(k)), run_cfg["semi"][k])]


def _earlier_folder(run_dir: Path, out: Path, save_dir: Any) -> Path | None:
    """Where the ablation folder was when the run in ``run_dir`` trained: its recorded ``save_dir`` less the run's
    name (``seed0/online_bg1`` is two folders deep)."""
    depth, parents = len(run_dir.relative_to(out).parts), Path(str(save_dir or "")).parents
    return parents[depth - 1] if save_dir and depth <= len(parents) else None


def _moved(value: Any, earlier: Path, out: Path) -> Any:
    """``value``, a path inside the ``earlier`` ablation folder, as the same path inside ``out``."""
    if not isinstance(value, str):
        return value
    path = Path(value)
    return str(out / path.relative_to(earlier)) if path.is_relative_to(earlier) else value


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def train_or_reuse(
    out: Path,
    name: str,
    kind: str,
    seed: int | None,
    run_cfg: dict[str, Any],
    variant: str | None = None,
    shared: bool = False,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Train ``run_cfg`` as ``out/name`` unless it finished earlier with the same settings; its table row (with
    ``facts``, what the arm adds to it), or ``None`` when another live process is training it (said, and left to
    that process). A ``shared`` run, one the others need, is waited for instead. The run folder's lock is held
    from the check to the row, so no other process clears or trains it meanwhile; an unfinished earlier attempt is
    cleared first (Ultralytics would append to its results.csv)."""
    row = _finished(out, name, run_cfg)
    if row is not None:
        return row
    lock = claim(RunLock(out / name), name, wait=shared)
    if lock is None:
        return None
    try:
        return _finished(out, name, run_cfg, warn=False) or _train_run(out, name, kind, seed, run_cfg, variant, facts)
    finally:
        lock.release()


def _finished(out: Path, name: str, run_cfg: dict[str, Any], warn: bool = True) -> dict[str, Any] | None:
    """The row of ``out/name`` if it finished earlier with ``run_cfg``'s settings; refused if with others."""
    row = read_row(out / name / ROW_FILE, warn)
    if row is None:
        return None
    differ = settings_differ(out / name, row, run_cfg, out)
    if differ:
        raise ConfigError(
            f"{out / name}: finished earlier with other settings ({', '.join(differ[:5])}); give --out a new "
            "folder, or delete that run"
        )
    print(f"\n{name} (finished earlier, skipped)", flush=True)
    return row


def read_row(path: Path, warn: bool = True) -> dict[str, Any] | None:
    """A finished run's row, or ``None`` if there is none; an empty or malformed one (a write cut short before rows
    were written atomically) counts as none, with a warning."""
    if not path.is_file():
        return None
    try:
        row = json.loads(path.read_text())
    except ValueError:  # not JSON, or not UTF-8
        row = None
    if isinstance(row, dict):
        return row
    if warn:
        print(f"WARNING: {path} is empty or not valid JSON (a write cut short): that run counts as unfinished")
    return None


def claim(lock: RunLock, name: str, wait: bool, busy: str = "is training it") -> RunLock | None:
    """``lock`` acquired; while another live process holds it: ``None`` (said), or with ``wait`` the lock once
    that process lets go."""
    waiting = False
    while (owner := lock.try_acquire()) is not None:
        if not wait:
            print(f"\n{name}: process {owner} {busy}; skipped here (that process reports it)", flush=True)
            return None
        if not waiting:
            print(f"\n{name}: process {owner} {busy}; waiting for it to finish", flush=True)
            waiting = True
        time.sleep(LOCK_POLL_SECONDS)
    return lock


def _train_run(
    out: Path,
    name: str,
    kind: str,
    seed: int | None,
    run_cfg: dict[str, Any],
    variant: str | None,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``out/name``, whose lock this process holds, from scratch; its row, written atomically."""
    leftovers = [p for p in (out / name).iterdir() if p.name != LOCK_NAME]
    if leftovers:
        print(f"\n{name}: removing an unfinished earlier attempt", flush=True)
        for path in leftovers:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    print(f"\n{name}", flush=True)
    fingerprint = _fingerprint(run_cfg)
    run_cfg = {**run_cfg, "train": {**run_cfg["train"], "project": str(out), "name": name, "exist_ok": True}}
    prepare(run_cfg)
    start = time.time()
    summary = train(run_cfg)
    last = (history(out / name) or [{}])[-1]
    row = {
        **summary,
        "run": name,
        "kind": kind,
        "seed": seed,
        "mode": run_cfg["semi"]["mode"],
        "variant": variant,
        "lambda_bg": run_cfg["semi"]["lambda_bg"],
        "bg_mode": run_cfg["semi"].get("bg_mode", "max"),
        "semi/pl_precision": float(last.get("semi/pl_precision", "nan") or "nan"),
        "semi/pl_recall": float(last.get("semi/pl_recall", "nan") or "nan"),
        "semi/pl_iou": float(last.get("semi/pl_iou", "nan") or "nan"),
        "minutes": (time.time() - start) / 60,
        "config_fingerprint": fingerprint,
        **(facts or {}),
    }
    write_atomically(out / name / ROW_FILE, lambda part: part.write_text(json.dumps(row)), sync=True)
    return row


def finished_rows(out: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of every finished run under ``out``: ``names`` in their order, then runs this invocation did not
    name (another ``--variant``, ``--lambdas`` or ``--ceiling-seeds`` of an earlier call on the folder), so that
    the report never depends on which flags the last call had; the converged run first, the ceilings last."""
    found = sorted(str(f.parent.relative_to(out)) for f in out.glob(f"**/{ROW_FILE}"))
    ordered = list(dict.fromkeys([*names, *found]))
    rows = [row for row in (read_row(out / n / ROW_FILE) for n in ordered) if row is not None]
    rank = {CONVERGED: 0, FULLY_LABELED: 2, FULLY_LABELED_CONTINUED: 2}
    return sorted(rows, key=lambda row: rank.get(row["kind"], 1))
