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
- ``reviewed`` (``--review-k``, ``--review-orders``; :mod:`.review_arms`): the config's online method, the same
  continuation, after a simulated reviewer corrected ``k`` unlabeled images with their hidden labels, chosen in the
  review page's order, at random or in the page's order with near-duplicates counted once.
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

This module runs the protocol; :mod:`.protocol` says which arms, :mod:`.schedule` their training arguments,
:mod:`.runs` reuses and locks run folders, :mod:`.run_folder` reads finished ones, :mod:`.hidden_labels` and
:mod:`.offline_labels` make the oracle's dataset and the offline arms' pseudo-labels.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_loading import load_config
from ..data import check_detection_dataset, list_images
from ..errors import ConfigError
from ..integrations.ultralytics import split_metrics, training_arguments, training_default
from ..runfiles import last_weights, train_state
from .arms import (
    CONTINUATIONS,
    CONVERGED,
    FULLY_LABELED,
    FULLY_LABELED_CONTINUED,
    OFFLINE,
    ORACLE,
    REVIEWED,
    SCRATCH,
)
from .held_out import TEST, GainIntervals, has_test_split, measured_on_test, rows_by_split
from .hidden_labels import hidden_labels_dataset, missing_hidden_labels
from .label_splits import label_split, split_configs
from .offline_labels import offline_pseudo_labels
from .protocol import (
    ONLINE_MODE,
    SUPERVISED_MODE,
    Arm,
    Protocol,
    arms_to_run,
    ceiling_runs,
    ceilings_to_run,
    continuation_arms,
    continuation_facts,
)
from .report import write_protocol_report
from .review_arms import review_facts, reviewed_folder
from .run_folder import history, resolved_optimizer, run_args
from .runs import ROW_FILE, finished_rows, read_row, train_or_reuse
from .schedule import ceiling_train_args, continuation_train_args, epochs_for


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
    protocol: Protocol | None = None,
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run (or finish) the protocol on ``config`` and write the report; returns every finished run's row (on
    validation). With ``protocol.splits`` above 1, on each label split in ``out/split<seed>``
    (:mod:`.label_splits`), and the report over them all in ``out``; ``protocol`` defaults to :class:`Protocol`'s
    defaults. With ``protocol.report_only`` nothing trains (a run with weights and no test metrics is still
    measured on test); a folder with no finished run is then an error.

    Raises:
        ConfigError: the config or protocol is unusable, or ``report_only`` found no finished run under ``out``.
    """
    protocol = Protocol() if protocol is None else protocol
    out_dir = Path(out or Path("runs") / "ablate" / Path(str(config)).stem).resolve()
    if protocol.splits == 1:
        rows, report_rows, histories, notes = _run_one_split(
            config, out_dir, protocol, overrides, not protocol.report_only
        )
    else:
        rows, report_rows, histories, notes = [], [], {}, []
        for k, (seed, split_overrides) in enumerate(split_configs(config, out_dir, protocol.splits, overrides)):
            train = not protocol.report_only and (not protocol.only_splits or k in protocol.only_splits)
            found = _run_one_split(config, out_dir / f"split{seed}", protocol, split_overrides, train)
            rows += found[0]
            report_rows += [{**r, "run": f"split{seed}/{r['run']}"} for r in found[1]]
            histories.update({f"split{seed}/{k}": v for k, v in found[2].items()})
            notes += [f"split{seed}: {note}" for note in found[3]]
    if protocol.report_only and not rows:
        raise ConfigError(f"--report-only: no finished run under {out_dir} (an ablation_row.json in a run folder)")
    md = write_protocol_report(report_rows, histories, out_dir, notes=notes, gain_interval=GainIntervals(out_dir))
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
    unlabeled_images = list_images(cfg.semi.unlabeled)
    plan = _Plan(
        out=out_dir,
        base=base,
        n_labeled=check_detection_dataset(cfg.data)["n_train"],
        n_unlabeled=len(unlabeled_images),
        labeled_repeat=cfg.semi.labeled_repeat,
        full_data=hidden_labels_dataset(cfg.data, cfg.semi.unlabeled, out_dir),
        hidden_note=missing_hidden_labels(unlabeled_images, cfg.semi.unlabeled),
    )
    base_seed = int(base["train"].get("seed", 0))
    arms = continuation_arms(protocol, [base_seed + k for k in range(protocol.seeds)])
    notes = _train_split(plan, protocol, arms, base_seed) if train else []
    ceilings = [name for name, _ in ceiling_runs(protocol, base_seed)]
    names = [CONVERGED, *(a.name for a in arms), *ceilings, *(f"{name}_continued" for name in ceilings), SCRATCH]
    rows = finished_rows(plan.out, names)
    notes += _step_mismatches(rows, protocol.steps)
    histories = {row["run"]: history(plan.out / row["run"]) for row in rows}
    rows = [{**row, "label_split": label_split(cfg.data)} for row in rows]
    report_rows, notes = _with_test_rows(plan, rows), [n for n in notes if n]
    if protocol.splits > 1:
        write_protocol_report(report_rows, histories, plan.out, notes=notes, gain_interval=GainIntervals(plan.out))
    return rows, report_rows, histories, notes


def _train_split(plan: _Plan, protocol: Protocol, arms: Sequence[Arm], base_seed: int) -> list[str]:
    """Train (or reuse) the converged run, then this invocation's continuations, ceilings and ceiling
    continuations on one label split; the notes for its report."""
    converged_cfg = copy.deepcopy(plan.base)
    converged_cfg["semi"].update(mode=SUPERVISED_MODE, lambda_bg=0.0)
    train_or_reuse(plan.out, CONVERGED, CONVERGED, base_seed, converged_cfg, shared=True)  # every continuation needs it
    missing = [
        path for path in (train_state(plan.converged_dir), last_weights(plan.converged_dir)) if not path.is_file()
    ]
    if missing:
        raise ConfigError(
            f"{plan.converged_dir}: finished, but {missing[0]} is not there (results restored from an archive keep "
            "no weights), so nothing can continue from it; --report-only writes the report over the finished runs"
        )
    optim = resolved_optimizer(plan.converged_dir)
    hidden = [k for k in (ORACLE, FULLY_LABELED) if protocol.runs(k) and (k != ORACLE or protocol.oracle)]
    hidden += [REVIEWED] if protocol.review_k and protocol.runs(REVIEWED) else []
    notes = [] if plan.full_data or not hidden else [f"{', '.join(hidden)}: skipped, {plan.hidden_note}"]
    notes += [plan.hidden_note] if plan.full_data and plan.hidden_note else []
    for note in notes:
        print(note)
    elsewhere = []  # runs another live process is training
    for arm in arms_to_run(protocol, arms, base_seed, hidden_labels=plan.full_data is not None):
        run_cfg = _continuation_config(plan, arm, protocol, optim)
        facts = {**(review_facts(arm, plan.out) if arm.review else {}), **continuation_facts(arm)} or None
        if train_or_reuse(plan.out, arm.name, arm.kind, arm.seed, run_cfg, arm.variant, facts=facts) is None:
            elsewhere.append(arm.name)
    if SCRATCH in protocol.only and _run_from_scratch(plan, base_seed) is None:
        elsewhere.append(SCRATCH)
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


def _with_test_rows(plan: _Plan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` on validation, then on the config's test split where it has one (:mod:`.held_out`)."""
    data = plan.base["data"]
    if not has_test_split(data):
        return rows_by_split(rows, {})
    train = plan.base["train"]
    imgsz, batch = int(train.get("imgsz", training_default("imgsz"))), _fixed_batch(train)

    def evaluate(weights: Path, image_stats: Path) -> dict[str, float]:
        return split_metrics(weights, data, TEST, imgsz, batch, image_stats=image_stats)

    tests = {row["run"]: measured_on_test(plan.out / row["run"], evaluate) for row in rows}
    return rows_by_split(rows, {run: metrics for run, metrics in tests.items() if metrics is not None})


def _continuation_config(
    plan: _Plan, arm: Arm, protocol: Protocol, optim: dict[str, Any], start: Path | None = None
) -> dict[str, Any]:
    """The run config of ``arm``: a continuation of ``start`` (the converged run unless given) for the budget."""
    start = start or plan.converged_dir
    run_cfg = copy.deepcopy(plan.base)
    offline, oracle = arm.kind == OFFLINE, arm.kind in (ORACLE, FULLY_LABELED_CONTINUED)  # oracle: hidden labels
    # reviewed images join the labeled ones at the first epoch's start, after Ultralytics has counted the batches
    # of an epoch (its optimizer-step cadence): the epochs are the labeled images' alone
    images = plan.n_labeled + plan.n_unlabeled if offline or oracle else plan.n_labeled * plan.labeled_repeat
    batch, nbs = _fixed_batch(run_cfg["train"]), int(run_cfg["train"].get("nbs", training_default("nbs")))
    run_cfg["model"] = str(last_weights(start))
    epochs = epochs_for(protocol.steps, images, batch, nbs)
    run_cfg["train"].update(
        continuation_train_args(optim, protocol.continue_lr * arm.lr_scale, epochs, run_args(start)), seed=arm.seed
    )
    run_cfg["semi"].update(
        arm.semi,
        init_state=str(train_state(start)),
        max_optimizer_steps=protocol.steps,
        burn_in=0,
        teacher_tau=0.0,
    )
    if offline:
        pseudo = offline_pseudo_labels(plan.out, plan.converged_dir, run_cfg)
        run_cfg["semi"].update(labeled_repeat=1, pseudo_labels=str(pseudo))
    if arm.review:
        run_cfg["semi"].update(reviewed=str(reviewed_folder(plan.out, start, run_cfg["semi"]["unlabeled"], arm)))
    if oracle:
        run_cfg["data"] = str(plan.full_data)
        run_cfg["semi"].update(labeled_repeat=1)
    return run_cfg


def _run_from_scratch(plan: _Plan, seed: int) -> dict[str, Any] | None:
    """``online_scratch``: the config's online method trained from the model's ``.yaml`` with the converged run's
    schedule and seed (its burn-in as configured), the way a user runs ``semiyolo train``; the report compares it
    with the converged run, the labeled-only run of the same length. Its row, or ``None`` when another process is
    training it."""
    run_cfg = copy.deepcopy(plan.base)
    run_cfg["semi"].update(mode=ONLINE_MODE, keep_state=False)
    run_cfg["train"].update(seed=seed)
    return train_or_reuse(plan.out, SCRATCH, SCRATCH, seed, run_cfg)


def _run_ceiling(plan: _Plan, optim: dict[str, Any], name: str, seed: int) -> dict[str, Any] | None:
    """Train a fully labeled run as ``name``: every training image with its (hidden) label, the converged run's
    schedule, ``seed``; its row, or ``None`` when another process is training it."""
    full_cfg = copy.deepcopy(plan.base)
    full_cfg["data"] = str(plan.full_data)
    scale = plan.n_labeled * plan.labeled_repeat / (plan.n_labeled + plan.n_unlabeled)
    full_cfg["train"].update(ceiling_train_args(optim, plan.base["train"], scale), seed=seed)
    full_cfg["semi"].update(mode=SUPERVISED_MODE, lambda_bg=0.0, labeled_repeat=1)
    return train_or_reuse(plan.out, name, FULLY_LABELED, seed, full_cfg)


def _continue_ceiling(plan: _Plan, protocol: Protocol, name: str, seed: int) -> dict[str, Any] | None:
    """The finished ceiling ``name`` stands for (``name`` less ``_continued``), continued on every image with its
    hidden label for the arms' budget, as the oracle continues the converged run, so the ceiling has trained as long
    as the arms; its row, or ``None`` when another process is training it."""
    ceiling = plan.out / name.removesuffix("_continued")
    arm = Arm(name, FULLY_LABELED_CONTINUED, seed, {"mode": SUPERVISED_MODE, "lambda_bg": 0.0})
    run_cfg = _continuation_config(plan, arm, protocol, resolved_optimizer(ceiling), start=ceiling)
    return train_or_reuse(plan.out, name, FULLY_LABELED_CONTINUED, seed, run_cfg)


def _step_mismatches(rows: Sequence[dict[str, Any]], steps: int) -> list[str]:
    """A note for each continuation that took another number of optimizer steps than the budget."""
    odd = [
        f"{r['run']} ({r.get('optimizer_steps')})"
        for r in rows
        if r["kind"] in (*CONTINUATIONS, FULLY_LABELED_CONTINUED) and r.get("optimizer_steps") != steps
    ]
    return [f"WARNING: these runs did not take {steps} optimizer steps: {', '.join(odd)}"] if odd else []
