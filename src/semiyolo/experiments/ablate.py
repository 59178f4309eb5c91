"""``semiyolo ablate CONFIG``: the fair semi-supervised protocol on one dataset, label budget and split.

Arms (``kind`` in ``ablation.csv``):

- ``supervised_converged``: the labeled images alone, the config's schedule (``train.epochs``,
  ``semi.labeled_repeat``), trained through its whole learning-rate decay; the report shows its curve and how much
  it still gained over the last quarter of its steps.
- ``supervised_continued``: from that run's final state (:mod:`.continuation`), ``steps`` more optimizer steps on
  the labeled images alone; with its learning-rate controls (``supervised_continued_lr<m>``) the candidates for
  the baseline (the best on validation), and with the penalty and augmentation controls
  (``supervised_continued_bg<lambda>``, ``supervised_continued_aug_<variant>``) what isolates the pseudo-labels
  (:mod:`.arms`).
- ``online`` (lambda_bg 0, each of ``lambdas``, the focal mode on request) and ``offline`` (pseudo-labels from the
  converged weights, labeled + pseudo-labeled images): the same continuation, the same ``steps``.
- ``oracle_continued``: the same continuation on the labeled and the unlabeled images with their hidden labels, as
  if the pseudo-labels were perfect: what ``steps`` optimizer steps can give at most to any pseudo-labels.
- ``fully_labeled``: the labeled and unlabeled images with their hidden labels, from the config's model, with the
  converged run's schedule in as many batches (so as many optimizer steps): the ceiling; and
  ``fully_labeled_continued``, each ceiling continued for ``steps`` like the oracle, so the ceiling trains as long
  as the arms. The oracle and the ceilings are skipped, with a note, without hidden labels.

Where the config's data has a ``test`` split, every run is also measured there (:mod:`.held_out`); choices are
made on validation.

Every continuation uses the converged run's optimizer (its resolved class and peak learning rate), starts at
``continue_lr`` times that peak with no warm-up and decays linearly to the converged run's final learning rate,
keeps the augmentation that run ended with (mosaic stays closed), and stops at exactly ``steps`` optimizer steps
(``semi.max_optimizer_steps``). The continuations repeat over ``seeds`` seeds (the converged run and the offline
pseudo-labels are shared). Metrics are those of each run's final weights (``semi.report_weights: last``), not of its
best epoch. Finished runs are skipped on re-runs, also in a moved or copied folder. Processes side by side on one
folder (``--only-seeds``) are safe: each run folder is claimed with its run lock
(:class:`~semiyolo.runfiles.RunLock`) before it is looked at; the converged run and the offline pseudo-labels are
waited for, any other run a live process owns is skipped here and reported there.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import BEFORE_THE_KEY, SUPERVISED_KEYS, SemiConfig, load_config
from ..data import (
    check_detection_dataset,
    dataset_root,
    label_path,
    list_images,
    split_entries,
    write_atomically,
    yaml_entries,
)
from ..errors import ConfigError
from ..integrations.ultralytics import prepare, split_metrics, train, training_arguments, training_default
from ..integrations.ultralytics.offline import pseudo_label_folder
from ..runfiles import LOCK_NAME, RunLock
from .arms import (
    CONTINUATIONS,
    CONTINUED,
    CONTINUED_AUG,
    CONTINUED_BG,
    CONTINUED_LR,
    CONVERGED,
    FULLY_LABELED,
    FULLY_LABELED_CONTINUED,
    ORACLE,
    VARIANTS,
)
from .held_out import TEST, has_test_split, measured_on_test, rows_by_split
from .label_splits import split_configs
from .report import write_protocol_report

ROW_FILE = "ablation_row.json"  # a finished run's table row, written last
LOCK_POLL_SECONDS = 5.0  # how often a run another process trains is looked at again, when it is waited for


@dataclass(frozen=True)
class Protocol:
    """What the ablation runs besides the converged baseline."""

    steps: int = 200  # optimizer steps of every continuation arm
    seeds: int = 3
    lambdas: Sequence[float] = (1.0,)  # online lambda_bg values besides 0
    unpenalized: bool = True  # online with lambda_bg 0 as well
    focal: bool = False
    offline: bool = True
    oracle: bool = True  # the continuation on the hidden labels (needs them)
    continue_lr: float = 0.1  # the continuation's first learning rate, as a share of the converged run's peak
    only: tuple[str, ...] = ()  # run only these kinds besides the converged run (all when empty)
    only_seeds: tuple[int, ...] = ()  # run only these seeds' continuations and ceilings, 0-based (all when empty)
    ceiling_seeds: int = 1  # seeds of the fully labeled ceiling
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()  # online arms (name, semi settings over lambda_bg 1)
    splits: int = 1  # label splits: the config's own and the ones 'semiyolo split' draws with the next seeds
    controls: bool = True  # the labeled-only controls (:mod:`.arms`): the penalty, the augmentations
    lr_scales: tuple[float, ...] = (2.0, 4.0)  # the labeled-only continuation also at these multiples of continue_lr
    only_splits: tuple[int, ...] = ()  # train only these label splits, 0-based (all when empty); the report has all

    def __post_init__(self) -> None:
        if not 0 < self.continue_lr <= 1:
            raise ConfigError(
                f"--continue-lr: expected a share of the peak learning rate in (0, 1], got {self.continue_lr}"
            )
        object.__setattr__(self, "lambdas", tuple(dict.fromkeys(lam for lam in self.lambdas if lam != 0)))
        if VARIANTS in self.only and not self.variants:
            raise ConfigError(
                "--only variants: no --variant given, so there is nothing to train besides the converged run"
            )
        if self.ceiling_seeds < 1:
            raise ConfigError(f"--ceiling-seeds: expected at least 1 seed, got {self.ceiling_seeds}")
        if self.splits < 1:
            raise ConfigError(f"--splits: expected at least 1 label split, got {self.splits}")
        object.__setattr__(self, "lr_scales", tuple(dict.fromkeys(m for m in self.lr_scales if m != 1)))
        too_fast = [m for m in self.lr_scales if not 0 < m * self.continue_lr <= 1]
        if too_fast:
            raise ConfigError(
                f"--lr-scales: {too_fast} times --continue-lr {self.continue_lr} is not a share of the peak learning "
                "rate in (0, 1]"
            )
        outside_splits = [k for k in self.only_splits if not 0 <= k < self.splits]
        if outside_splits:
            raise ConfigError(
                f"--only-splits: {outside_splits} outside the {self.splits} label splits (0 to {self.splits - 1})"
            )
        most = max(self.seeds, self.ceiling_seeds)
        outside = [k for k in self.only_seeds if not 0 <= k < most]
        if outside:
            raise ConfigError(f"--only-seeds: {outside} outside the {most} seeds (0 to {most - 1})")

    def chosen_seeds(self, base_seed: int, count: int) -> set[int]:
        """The seeds of ``count`` that this invocation trains: ``--only-seeds``' (``base_seed + k``), else all."""
        return {base_seed + k for k in self.only_seeds or range(count)}

    def runs(self, kind: str) -> bool:
        return not self.only or kind in self.only

    def runs_arm(self, arm: Arm) -> bool:
        """Whether ``--only`` takes this continuation: its kind, or ``variants`` for a ``--variant`` arm."""
        return self.runs(arm.kind) or (arm.variant is not None and VARIANTS in self.only)


@dataclass
class Arm:
    name: str  # the run folder under the output folder
    kind: str
    seed: int
    semi: dict[str, Any] = field(default_factory=dict)  # semi settings over the config's
    variant: str | None = None  # a --variant's name
    lr_scale: float = 1.0  # the continuation's first learning rate, in multiples of ``Protocol.continue_lr``


def continuation_arms(protocol: Protocol, seeds: Sequence[int]) -> list[Arm]:
    """The arms that continue from the converged run, ``seed<k>/<arm>`` for each seed."""
    arms = []
    for seed in seeds:
        arms.append(Arm(f"seed{seed}/{CONTINUED}", CONTINUED, seed, {"mode": "supervised", "lambda_bg": 0.0}))
        arms += control_arms(protocol, seed)
        for lam in ((0.0,) if protocol.unpenalized else ()) + tuple(protocol.lambdas):
            arms.append(Arm(f"seed{seed}/online_bg{lam:g}", "online", seed, {"mode": "online", "lambda_bg": lam}))
        if protocol.focal:
            online = {"mode": "online", "lambda_bg": 1.0, "bg_mode": "focal"}
            arms.append(Arm(f"seed{seed}/online_focal1", "online", seed, online))
        for name, settings in protocol.variants:
            online = {"mode": "online", "lambda_bg": 1.0, **settings}
            arms.append(Arm(f"seed{seed}/online_{name}", "online", seed, online, variant=name))
        if protocol.offline:
            arms.append(Arm(f"seed{seed}/offline", "offline", seed, {"mode": "offline", "lambda_bg": 0.0}))
        if protocol.oracle:
            arms.append(Arm(f"seed{seed}/{ORACLE}", ORACLE, seed, {"mode": "supervised", "lambda_bg": 0.0}))
    return arms


def control_arms(protocol: Protocol, seed: int) -> list[Arm]:
    """The labeled-only continuations that each differ from ``supervised_continued`` in one way an online arm
    does (:mod:`.arms`): each ``--lambdas`` penalty, each ``lr_scales`` learning rate, and the pseudo-mixup of each
    ``--variant`` that has one, as ``semi.labeled_mixup`` (a variant's other settings act on pseudo-labels
    alone)."""
    labeled = {"mode": "supervised", "lambda_bg": 0.0}
    arms = [Arm(f"seed{seed}/{CONTINUED_LR}{m:g}", CONTINUED_LR, seed, labeled, lr_scale=m) for m in protocol.lr_scales]
    if not protocol.controls:
        return arms
    for lam in protocol.lambdas:
        penalised = {**labeled, "lambda_bg": lam}
        arms.append(Arm(f"seed{seed}/{CONTINUED_BG}{lam:g}", CONTINUED_BG, seed, penalised))
    for name, settings in protocol.variants:
        if settings.get("pseudo_mixup"):
            mixup = {**labeled, "labeled_mixup": settings["pseudo_mixup"]}
            arms.append(Arm(f"seed{seed}/{CONTINUED_AUG}_{name}", CONTINUED_AUG, seed, mixup))
    return arms


def ceiling_runs(protocol: Protocol, base_seed: int) -> list[tuple[str, int]]:
    """The fully labeled runs, ``(folder, seed)``: ``fully_labeled`` at ``base_seed`` (the folder a single ceiling
    has always had), then ``seed<s>/fully_labeled`` for each further seed ``s``."""
    seeds = [base_seed + k for k in range(protocol.ceiling_seeds)]
    return [(FULLY_LABELED if s == base_seed else f"seed{s}/{FULLY_LABELED}", s) for s in seeds]


def ceilings_to_run(
    protocol: Protocol, base_seed: int, hidden_labels: bool, kind: str = FULLY_LABELED
) -> list[tuple[str, int]]:
    """The ceilings this invocation trains: none without hidden labels or when ``--only`` leaves them out, else
    ``--only-seeds``' seeds (``base_seed + k``). ``kind`` :data:`~.arms.FULLY_LABELED_CONTINUED`: their
    continuations for the arms' budget instead (``fully_labeled_continued``, ``seed<s>/fully_labeled_continued``)."""
    if not hidden_labels or not (protocol.runs(kind) or protocol.runs(FULLY_LABELED)):  # a ceiling with its run on
        return []
    seeds = protocol.chosen_seeds(base_seed, protocol.ceiling_seeds)
    chosen = [(name, seed) for name, seed in ceiling_runs(protocol, base_seed) if seed in seeds]
    return [(name if kind == FULLY_LABELED else f"{name}_continued", seed) for name, seed in chosen]


def arms_to_run(protocol: Protocol, arms: Sequence[Arm], base_seed: int, hidden_labels: bool) -> list[Arm]:
    """The continuations this invocation trains: ``--only``'s kinds (``variants``: the ``--variant`` arms),
    ``--only-seeds``' seeds (``base_seed + k``), and the oracle only where the unlabeled images have hidden labels."""
    seeds = protocol.chosen_seeds(base_seed, protocol.seeds)
    return [a for a in arms if protocol.runs_arm(a) and a.seed in seeds and (a.kind != ORACLE or hidden_labels)]


def epochs_for(steps: int, images: int, batch: int, nbs: int) -> int:
    """Epochs that hold at least ``steps`` optimizer steps: Ultralytics steps every ``max(round(nbs / batch), 1)``
    batches, counted across epochs, and an epoch has ``ceil(images / batch)`` batches."""
    accumulate = max(round(nbs / batch), 1)
    return max(1, math.ceil(steps * accumulate / math.ceil(images / batch)))


def resolved_optimizer(run_dir: Path) -> dict[str, Any]:
    """The optimizer a finished run used, as Ultralytics training arguments (``optimizer: auto`` resolved: the
    class, the peak ``lr0`` and the warm-up's bias learning rate as Ultralytics wrote them back), the first
    momentum read from its final state, and the optimizer steps it took."""
    state = torch.load(run_dir / "weights" / "train_state.pt", map_location="cpu", weights_only=False)
    args = torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)["train_args"]
    group = state["optimizer"]["param_groups"][0]
    momentum = group["betas"][0] if "betas" in group else group.get("momentum", args["momentum"])
    return {
        "optimizer": args["optimizer"],
        "lr0": float(args["lr0"]),
        "momentum": float(momentum),
        "lrf": float(args["lrf"]),
        "warmup_bias_lr": float(args["warmup_bias_lr"]),
        "steps": int(state.get("optimizer_steps", 0)),
    }


def ceiling_train_args(optim: dict[str, Any], converged_train: dict[str, Any], scale: float) -> dict[str, Any]:
    """The fully labeled run's schedule: the converged run's, in as many batches (``scale`` = the converged run's
    images per epoch over the ceiling's), with its resolved optimizer, so that warm-up, decay and optimizer steps
    match."""
    epochs = int(converged_train.get("epochs", training_default("epochs")))
    warmup = float(converged_train.get("warmup_epochs", training_default("warmup_epochs")))
    close_mosaic = int(converged_train.get("close_mosaic", training_default("close_mosaic")))
    return {
        "optimizer": optim["optimizer"],
        "lr0": optim["lr0"],
        "momentum": optim["momentum"],
        "warmup_bias_lr": optim["warmup_bias_lr"],
        "epochs": max(1, round(epochs * scale)),
        "warmup_epochs": warmup * scale,
        "close_mosaic": round(close_mosaic * scale),
    }


def continuation_train_args(
    optim: dict[str, Any], continue_lr: float, epochs: int, start_train: dict[str, Any]
) -> dict[str, Any]:
    """Training arguments of a continuation of ``epochs`` epochs: the converged run's optimizer, starting at
    ``continue_lr`` of its peak, decaying linearly to its final learning rate, no warm-up; and the augmentation
    the converged run ended with: a run that closed mosaic for its last epochs continues without it throughout
    (Ultralytics closes it at epoch ``epochs - close_mosaic``, here 0)."""
    start = optim["lr0"] * continue_lr
    final = optim["lr0"] * optim["lrf"]
    closed = int(start_train.get("close_mosaic", training_default("close_mosaic"))) > 0
    return {
        "optimizer": optim["optimizer"],
        "lr0": start,
        "lrf": min(1.0, final / start),
        "momentum": optim["momentum"],
        "warmup_epochs": 0,
        "cos_lr": False,
        "epochs": epochs,
        "close_mosaic": epochs if closed else 0,
    }


def hidden_labels_dataset(data_yaml: str, unlabeled: str, out: Path) -> Path | None:
    """A ``data.yaml`` whose training images are the labeled and the unlabeled ones with their hidden labels
    (as ``semiyolo split`` keeps them), or ``None`` when the unlabeled images have no label files."""
    if not any(label_path(image).is_file() for image in list_images(unlabeled)):
        return None
    data = yaml.safe_load(Path(data_yaml).read_text())
    root = dataset_root(data, data_yaml)
    full = {
        **data,
        "path": str(root),
        "train": [*map(str, split_entries(data, root, "train")), str(Path(unlabeled).resolve())],
        "val": yaml_entries(split_entries(data, root, "val")),
    }
    text = yaml.safe_dump(full, sort_keys=False)
    return write_atomically(out / "fully_labeled.yaml", lambda part: part.write_text(text))  # others may read it


def _history(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "results.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def _fingerprint(run_cfg: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(run_cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings_differ(run_dir: Path, row: dict[str, Any], run_cfg: dict[str, Any], out: Path | None = None) -> list[str]:
    """The settings of ``run_cfg`` that a finished run (its ``args.yaml`` and the ``semi`` block of its row) had
    otherwise: model, data, every given training argument, and the ``semi`` keys its mode reads
    (:data:`~semiyolo.config.SUPERVISED_KEYS` unless online). A key the run predates counts as what runs did
    before it existed (:data:`~semiyolo.config.BEFORE_THE_KEY`), else as its default. With ``out``, the ablation
    folder the run lies in, paths inside the folder it trained in count relative to it (a moved or copied
    ablation folder)."""
    args = _train_args(run_dir) if (run_dir / "args.yaml").is_file() else {}
    earlier = _earlier_folder(run_dir, out, args.get("save_dir") or row.get("save_dir")) if out else None

    def same(stored: Any, given: Any) -> bool:
        return _same(_moved(stored, earlier, out) if earlier else stored, given)

    given = {"model": run_cfg["model"], "data": run_cfg["data"], **run_cfg["train"]}
    differ = [k for k, v in given.items() if k not in ("project", "name", "exist_ok") and not same(args.get(k), v)]
    stored, defaults = row.get("semi", {}), {**SemiConfig().model_dump(), **BEFORE_THE_KEY}
    online = run_cfg["semi"].get("mode") == "online"
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


def _run(
    out: Path,
    name: str,
    kind: str,
    seed: int | None,
    run_cfg: dict[str, Any],
    variant: str | None = None,
    shared: bool = False,
) -> dict[str, Any] | None:
    """Train ``run_cfg`` as ``out/name`` unless it finished earlier with the same settings; its table row, or
    ``None`` when another live process is training it (said, and left to that process). A ``shared`` run, one
    the others need, is waited for instead. The run folder's lock is held from the check to the row, so no other
    process clears or trains it meanwhile; an unfinished earlier attempt is cleared first (Ultralytics would
    append to its results.csv)."""
    row = _finished(out, name, run_cfg)
    if row is not None:
        return row
    lock = _claim(RunLock(out / name), name, wait=shared)
    if lock is None:
        return None
    try:
        return _finished(out, name, run_cfg, warn=False) or _train_run(out, name, kind, seed, run_cfg, variant)
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


def _claim(lock: RunLock, name: str, wait: bool, busy: str = "is training it") -> RunLock | None:
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
    out: Path, name: str, kind: str, seed: int | None, run_cfg: dict[str, Any], variant: str | None
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
    last = (_history(out / name) or [{}])[-1]
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
        "minutes": (time.time() - start) / 60,
        "config_fingerprint": fingerprint,
    }
    write_atomically(out / name / ROW_FILE, lambda part: part.write_text(json.dumps(row)), sync=True)
    return row


def _fixed_batch(train: dict[str, Any]) -> int:
    batch = train.get("batch", training_default("batch"))
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"train.batch: the ablation needs a fixed batch size (an integer >= 1), got {batch!r}")
    return batch


@dataclass
class _Plan:
    """What every arm of one ablation shares."""

    out: Path
    base: dict[str, Any]  # the config, as a dict, with the protocol's reporting settings
    n_labeled: int
    n_unlabeled: int
    labeled_repeat: int
    full_data: Path | None  # data.yaml of the labeled and unlabeled images with their hidden labels, if they have them
    hidden_note: str = ""  # how many unlabeled images have no hidden label file, when some have none

    @property
    def converged_dir(self) -> Path:
        return self.out / CONVERGED


def run_ablation(
    config: str | Path,
    out: str | Path | None = None,
    protocol: Protocol = Protocol(),
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run (or finish) the protocol on ``config`` and write the report; returns every finished run's row (on
    validation). With ``protocol.splits`` above 1, on each label split in ``out/split<seed>``
    (:mod:`.label_splits`), and the report over them all in ``out``."""
    out_dir = Path(out or Path("runs") / "ablate" / Path(str(config)).stem).resolve()
    if protocol.splits == 1:
        rows, report_rows, histories, notes = _run_one_split(config, out_dir, protocol, overrides)
    else:
        rows, report_rows, histories, notes = [], [], {}, []
        for k, (seed, split_overrides) in enumerate(split_configs(config, out_dir, protocol.splits, overrides)):
            train = not protocol.only_splits or k in protocol.only_splits
            found = _run_one_split(config, out_dir / f"split{seed}", protocol, split_overrides, train)
            rows += found[0]
            report_rows += [{**r, "run": f"split{seed}/{r['run']}"} for r in found[1]]
            histories.update({f"split{seed}/{k}": v for k, v in found[2].items()})
            notes += [f"split{seed}: {note}" for note in found[3]]
    md = write_protocol_report(report_rows, histories, out_dir, notes=notes)
    print(f"\n{md.read_text()}\nTables and plots are in {out_dir}")
    return rows


def _run_one_split(
    config: str | Path, out_dir: Path, protocol: Protocol, overrides: Sequence[str], train: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[dict[str, str]]], list[str]]:
    """The protocol on one label split in ``out_dir`` (``train`` false: only its finished runs, as another process
    trains it), its report written there: its rows on validation, its rows for the report (on the test split too),
    the runs' histories and the report's notes."""
    cfg = load_config(config, overrides, train_keys=training_arguments())
    if not cfg.semi.unlabeled:
        raise ConfigError("semi.unlabeled: the ablation needs a folder of unlabeled images (see 'semiyolo split')")
    base = cfg.model_dump()
    base["semi"].update(report_weights="last", exact_resume=True, keep_state=True)
    _fixed_batch(base["train"])
    plan = _Plan(
        out=out_dir,
        base=base,
        n_labeled=check_detection_dataset(cfg.data)["n_train"],
        n_unlabeled=len(list_images(cfg.semi.unlabeled)),
        labeled_repeat=cfg.semi.labeled_repeat,
        full_data=hidden_labels_dataset(cfg.data, cfg.semi.unlabeled, out_dir),
        hidden_note=_missing_hidden_labels(cfg.semi.unlabeled),
    )
    base_seed = int(base["train"].get("seed", 0))
    arms = continuation_arms(protocol, [base_seed + k for k in range(protocol.seeds)])
    notes = _train_split(plan, protocol, arms, base_seed) if train else []
    ceilings = [name for name, _ in ceiling_runs(protocol, base_seed)]
    names = [CONVERGED, *(a.name for a in arms), *ceilings, *(f"{name}_continued" for name in ceilings)]
    rows = finished_rows(plan.out, names)
    notes += _step_mismatches(rows, protocol.steps)
    histories = {row["run"]: _history(plan.out / row["run"]) for row in rows}
    rows = [{**row, "label_split": _label_split(cfg.data)} for row in rows]
    report_rows, notes = _with_test_rows(plan, rows), [n for n in notes if n]
    if protocol.splits > 1:
        write_protocol_report(report_rows, histories, plan.out, notes=notes)
    return rows, report_rows, histories, notes


def _train_split(plan: _Plan, protocol: Protocol, arms: Sequence[Arm], base_seed: int) -> list[str]:
    """Train (or reuse) the converged run, then this invocation's continuations, ceilings and ceiling
    continuations on one label split; the notes for its report."""
    converged_cfg = copy.deepcopy(plan.base)
    converged_cfg["semi"].update(mode="supervised", lambda_bg=0.0)
    _run(plan.out, CONVERGED, CONVERGED, base_seed, converged_cfg, shared=True)  # every continuation needs it
    optim = resolved_optimizer(plan.converged_dir)
    hidden = [k for k in (ORACLE, FULLY_LABELED) if protocol.runs(k) and (k != ORACLE or protocol.oracle)]
    notes = [] if plan.full_data or not hidden else [f"{', '.join(hidden)}: skipped, {plan.hidden_note}"]
    notes += [plan.hidden_note] if plan.full_data and plan.hidden_note else []
    for note in notes:
        print(note)
    elsewhere = []  # runs another live process is training
    for arm in arms_to_run(protocol, arms, base_seed, hidden_labels=plan.full_data is not None):
        run_cfg = _continuation_config(plan, arm, protocol, optim)
        if _run(plan.out, arm.name, arm.kind, arm.seed, run_cfg, arm.variant) is None:
            elsewhere.append(arm.name)
    for name, seed in ceilings_to_run(protocol, base_seed, hidden_labels=plan.full_data is not None):
        if _run_ceiling(plan, optim, name, seed) is None:
            elsewhere.append(name)
    for name, seed in ceilings_to_run(protocol, base_seed, plan.full_data is not None, FULLY_LABELED_CONTINUED):
        if read_row(plan.out / name.removesuffix("_continued") / ROW_FILE, warn=False) is None:
            notes.append(f"{name}: not trained, its ceiling {name.removesuffix('_continued')} has not finished")
        elif _continue_ceiling(plan, protocol, name, seed) is None:
            elsewhere.append(name)
    if elsewhere:
        notes.append(
            f"still training in other processes, so not in this report: {', '.join(elsewhere)} (each process "
            "writes the report again when it finishes)"
        )
    return notes


def _label_split(data_yaml: str) -> Any:
    """Which labeled subset: the seed of the ``semiyolo split`` that wrote ``data_yaml`` (its ``split.json``), else
    the dataset's folder name."""
    manifest = Path(data_yaml).parent / "split.json"
    try:
        return json.loads(manifest.read_text()).get("seed", Path(data_yaml).parent.name)
    except (OSError, ValueError, AttributeError):  # no split.json, or not one 'semiyolo split' wrote
        return Path(data_yaml).parent.name


def _with_test_rows(plan: _Plan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` on validation, then on the config's test split where it has one (:mod:`.held_out`)."""
    data = plan.base["data"]
    if not has_test_split(data):
        return rows_by_split(rows, {})
    train = plan.base["train"]
    imgsz, batch = int(train.get("imgsz", training_default("imgsz"))), _fixed_batch(train)

    def evaluate(weights: Path) -> dict[str, float]:
        return split_metrics(weights, data, TEST, imgsz, batch)

    tests = {row["run"]: measured_on_test(plan.out / row["run"], evaluate) for row in rows}
    return rows_by_split(rows, tests)


def finished_rows(out: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of every finished run under ``out``: ``names`` in their order, then runs this invocation did not
    name (another ``--variant``, ``--lambdas`` or ``--ceiling-seeds`` of an earlier call on the folder), so that
    the report never depends on which flags the last call had; the converged run first, the ceilings last."""
    found = sorted(str(f.parent.relative_to(out)) for f in out.glob(f"**/{ROW_FILE}"))
    ordered = list(dict.fromkeys([*names, *found]))
    rows = [row for row in (read_row(out / n / ROW_FILE) for n in ordered) if row is not None]
    rank = {CONVERGED: 0, FULLY_LABELED: 2, FULLY_LABELED_CONTINUED: 2}
    return sorted(rows, key=lambda row: rank.get(row["kind"], 1))


def _continuation_config(
    plan: _Plan, arm: Arm, protocol: Protocol, optim: dict[str, Any], start: Path | None = None
) -> dict[str, Any]:
    """The run config of ``arm``: a continuation of ``start`` (the converged run unless given) for the budget."""
    start = start or plan.converged_dir
    run_cfg = copy.deepcopy(plan.base)
    offline, oracle = arm.kind == "offline", arm.kind in (ORACLE, FULLY_LABELED_CONTINUED)  # oracle: hidden labels
    images = plan.n_labeled + plan.n_unlabeled if offline or oracle else plan.n_labeled * plan.labeled_repeat
    batch, nbs = _fixed_batch(run_cfg["train"]), int(run_cfg["train"].get("nbs", training_default("nbs")))
    run_cfg["model"] = str(start / "weights" / "last.pt")
    epochs = epochs_for(protocol.steps, images, batch, nbs)
    run_cfg["train"].update(
        continuation_train_args(optim, protocol.continue_lr * arm.lr_scale, epochs, _train_args(start)), seed=arm.seed
    )
    run_cfg["semi"].update(
        arm.semi,
        init_state=str(start / "weights" / "train_state.pt"),
        max_optimizer_steps=protocol.steps,
        burn_in=0,
        teacher_tau=0.0,
    )
    if offline:
        pseudo = _pseudo_labels(plan.out, plan.converged_dir, run_cfg)
        run_cfg["semi"].update(labeled_repeat=1, pseudo_labels=str(pseudo))
    if oracle:
        run_cfg["data"] = str(plan.full_data)
        run_cfg["semi"].update(labeled_repeat=1)
    return run_cfg


def _run_ceiling(plan: _Plan, optim: dict[str, Any], name: str, seed: int) -> dict[str, Any] | None:
    """Train a fully labeled run as ``name``: every training image with its (hidden) label, the converged run's
    schedule, ``seed``; its row, or ``None`` when another process is training it."""
    full_cfg = copy.deepcopy(plan.base)
    full_cfg["data"] = str(plan.full_data)
    scale = plan.n_labeled * plan.labeled_repeat / (plan.n_labeled + plan.n_unlabeled)
    full_cfg["train"].update(ceiling_train_args(optim, plan.base["train"], scale), seed=seed)
    full_cfg["semi"].update(mode="supervised", lambda_bg=0.0, labeled_repeat=1)
    return _run(plan.out, name, FULLY_LABELED, seed, full_cfg)


def _train_args(run_dir: Path) -> dict[str, Any]:
    """The training arguments a finished run used (its ``args.yaml``)."""
    return yaml.safe_load((run_dir / "args.yaml").read_text()) or {}


def _continue_ceiling(plan: _Plan, protocol: Protocol, name: str, seed: int) -> dict[str, Any] | None:
    """The finished ceiling ``name`` stands for (``name`` less ``_continued``), continued on every image with its
    hidden label for the arms' budget, as the oracle continues the converged run, so the ceiling has trained as long
    as the arms; its row, or ``None`` when another process is training it."""
    ceiling = plan.out / name.removesuffix("_continued")
    arm = Arm(name, FULLY_LABELED_CONTINUED, seed, {"mode": "supervised", "lambda_bg": 0.0})
    run_cfg = _continuation_config(plan, arm, protocol, resolved_optimizer(ceiling), start=ceiling)
    return _run(plan.out, name, FULLY_LABELED_CONTINUED, seed, run_cfg)


def _missing_hidden_labels(unlabeled: str) -> str:
    """A note when some unlabeled images have no label file: the oracle and the ceiling train them as background."""
    images = list_images(unlabeled)
    missing = sum(not label_path(image).is_file() for image in images)
    if not missing:
        return ""
    if missing == len(images):
        return f"the unlabeled images ({unlabeled}) have no label files"
    return f"{missing} of {len(images)} unlabeled images ({unlabeled}) have no label file: trained as background there"


def _step_mismatches(rows: Sequence[dict[str, Any]], steps: int) -> list[str]:
    """A note for each continuation that took another number of optimizer steps than the budget."""
    odd = [
        f"{r['run']} ({r.get('optimizer_steps')})"
        for r in rows
        if r["kind"] in (*CONTINUATIONS, FULLY_LABELED_CONTINUED) and r.get("optimizer_steps") != steps
    ]
    return [f"WARNING: these runs did not take {steps} optimizer steps: {', '.join(odd)}"] if odd else []


def _pseudo_labels(out: Path, converged_dir: Path, run_cfg: dict[str, Any]) -> Path:
    """The offline arms' pseudo-labels: the converged run's final weights label the unlabeled folder once, with the
    config's teacher (``semi.teacher_flip``, ``semi.teacher_scale``); labels made with another teacher are made
    again. Another process making them is waited for."""
    target = out / "offline_pseudo_labels"
    lock = _claim(RunLock(out, f".{target.name}.lock"), target.name, wait=True, busy="is making them")
    try:
        _make_pseudo_labels(target, converged_dir, run_cfg)
    finally:
        lock.release()
    return target


def _make_pseudo_labels(target: Path, converged_dir: Path, run_cfg: dict[str, Any]) -> None:
    semi = run_cfg["semi"]
    plain = {"flip": False, "scale": 1.0}  # what made summaries written before they recorded the teacher
    teacher = {"flip": bool(semi.get("teacher_flip", False)), "scale": float(semi.get("teacher_scale", 1.0))}
    summary = target / "summary.json"
    if not summary.is_file() or json.loads(summary.read_text()).get("teacher", plain) != teacher:
        pseudo_label_folder(
            converged_dir / "weights" / "last.pt",
            semi["unlabeled"],
            target,
            semi["filters"],
            imgsz=int(run_cfg["train"].get("imgsz", 640)),
            overwrite=True,  # no summary.json (an earlier attempt was cut short), or another teacher's labels
            teacher_flip=teacher["flip"],
            teacher_scale=teacher["scale"],
        )
