"""How much of each arm's gain survives each control (issue 28): the report's table that says what pseudo-labels add.

An online arm differs from the baseline (the best labeled-only continuation) in its pseudo-labels and in what its
controls isolate: the learning rate (the labeled-only continuation at the arm's rate, where the sweep chose
another), the background penalty (``supervised_continued_bg<lambda>``, the labeled images alone with the
arm's ``lambda_bg``) and an added augmentation (``supervised_continued_aug_<variant>``, the arm's blend on labeled
images alone). For each arm and each of those, paired by label split and seed, the mean ± standard deviation of
``arm - control`` on mAP50-95, and the share of the arm's gain over the baseline that the control leaves,
``mean(arm - control) / mean(arm - baseline)``. A gain counts only where its mean exceeds its standard deviation
over the pairs (the spread of splits and seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .arms import CONTINUED_AUG, CONTINUED_BG, CONVERGED, OFFLINE, ONLINE, SCRATCH, labeled_only_at
from .rows import MAP, arm_name, lr_scale, mean_std, number, pair

SEMI_KINDS = (ONLINE, OFFLINE)  # the arms whose gain the controls take apart


def controls_of(arm: Sequence[dict[str, Any]], names: set[str], baseline: str) -> list[str]:
    """The arms ``arm`` (its runs) is compared with: the baseline, the labeled-only continuation at its learning
    rate (``supervised_continued``, or ``supervised_continued_lr<M>`` for an arm at ``lr_scale`` M; where that is
    not the baseline), the penalty alone at its ``lambda_bg`` (when it is penalised and at ``--continue-lr``, the
    penalty control's rate) and its augmentation alone (``supervised_continued_aug_<variant>``, run at the arm's
    rate), those of ``names`` that ran."""
    first = arm[0]
    scale = lr_scale(first)
    wanted = list(dict.fromkeys([baseline, labeled_only_at(scale)]))
    lambda_bg = number(first.get("lambda_bg"))
    if lambda_bg > 0 and scale == 1:  # the penalty's control runs at --continue-lr: it isolates nothing at another
        wanted.append(f"{CONTINUED_BG}{lambda_bg:g}")
    if first.get("variant"):
        wanted.append(f"{CONTINUED_AUG}_{first['variant']}")
    return [name for name in wanted if name in names]


def paired_differences(arm: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]]) -> list[float]:
    """``arm - other`` on mAP50-95 for each label split and seed both ran with a figure (a diverged run, NaN, pairs
    with nothing)."""
    other_by_pair = {pair(r): number(r.get(MAP)) for r in other}
    differences = [number(r.get(MAP)) - other_by_pair[pair(r)] for r in arm if pair(r) in other_by_pair]
    return [d for d in differences if not math.isnan(d)]


def control_gains(rows: Sequence[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """One entry per (semi-supervised arm, control): ``arm``, ``against``, ``pairs``, ``gain`` ``(mean, std)`` of
    the paired differences, ``share left`` (of the gain over ``baseline``; NaN without one) and ``counts`` (the
    mean exceeds the standard deviation)."""
    arms: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        arms.setdefault(arm_name(row), []).append(row)
    if baseline not in arms:
        return []
    entries = []
    for name, members in arms.items():
        if members[0]["kind"] not in SEMI_KINDS:
            continue
        over_baseline = mean_std(paired_differences(members, arms[baseline]))[0]
        for control in controls_of(members, set(arms), baseline):
            differences = paired_differences(members, arms[control])
            mean, std = mean_std(differences)
            entries.append(
                {
                    "arm": name,
                    "against": control,
                    "pairs": len(differences),
                    "gain": (mean, std),
                    "share left": mean / over_baseline if over_baseline > 0 else math.nan,
                    "counts": len(differences) > 1 and mean > std,
                }
            )
    return entries


def controls_markdown(entries: Sequence[dict[str, Any]]) -> str:
    """The table of :func:`control_gains`."""
    headers = ["arm", "against", "pairs", "mAP50-95 gain (mean ± std over splits and seeds)"]
    headers += ["share of the gain over the baseline left", "a gain beyond the spread"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for e in entries:
        mean, std = e["gain"]
        gain = "-" if math.isnan(mean) else f"{mean:+.4f} ± {std:.4f}"
        share = "-" if math.isnan(e["share left"]) else f"{e['share left']:.0%}"
        verdict = "yes" if e["counts"] else "no"
        lines.append(f"| {e['arm']} | {e['against']} | {e['pairs']} | {gain} | {share} | {verdict} |")
    return "\n".join(lines)


def scratch_sections(rows: Sequence[dict[str, Any]], where: str) -> list[str]:
    """The way a user runs it: ``online_scratch`` (the config's online method from the model's ``.yaml``) against
    ``supervised_converged`` (the labeled images alone, the same schedule), per label split, and whether the online
    run ends worse beyond the spread of the differences; none without both."""
    scratch = [r for r in rows if r["kind"] == SCRATCH]
    converged = {pair(r): number(r.get(MAP)) for r in rows if r["kind"] == CONVERGED}
    paired = [(r, converged[pair(r)]) for r in scratch if pair(r) in converged]
    paired = [(r, s) for r, s in paired if not math.isnan(number(r.get(MAP)) - s)]
    if not paired:
        return []
    lines = ["| label split | supervised (same schedule) | online from scratch | difference |", "|---|---|---|---|"]
    for row, supervised in paired:
        online = number(row.get(MAP))
        lines.append(f"| {row.get('label_split')} | {supervised:.4f} | {online:.4f} | {online - supervised:+.4f} |")
    mean, std = mean_std([number(r.get(MAP)) - s for r, s in paired])
    worse = len(paired) > 1 and mean + std < 0
    verdict = "worse than the supervised run beyond the spread" if worse else "not worse beyond the spread"
    if len(paired) < 2:
        verdict = "one label split: no spread to judge by"
    return [
        f"## From scratch, the way a user runs it, on {where} (mAP50-95)",
        "",
        *lines,
        "",
        f"Mean difference {mean:+.4f} ± {std:.4f} over {len(paired)} label splits: {verdict}.",
        "",
    ]


def control_sections(rows: Sequence[dict[str, Any]], baseline: str | None, where: str) -> list[str]:
    """The report's section for the rows of one evaluation split (``where``); none without a baseline or arms."""
    entries = control_gains(rows, baseline) if baseline else []
    if not entries:
        return []
    return [f"## What survives each control, on {where}", "", controls_markdown(entries), ""]
