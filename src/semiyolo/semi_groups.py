"""The ``semi:`` block by concern: each setting in one group, and a group written flat or nested.

The flat names are the storage format (``semi.yaml``, the settings ``semiyolo ablate`` compares to reuse a run, the
``semi`` settings of the state files); a group is another way of writing them. ``semi: {teacher: {decay: 0.99}}`` is
``semi: {teacher_decay: 0.99}``: inside a group a key may drop the group's prefix where its flat name has it
(``teacher.decay``) or be written in full (``teacher.teacher_decay``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class SemiGroup:
    """One concern of the ``semi:`` block: its name (``semi.<name>``, and the prefix ``<name>_`` its keys may drop),
    what ``semiyolo cfg`` says of it, its keys by their flat names, and whether every mode reads them (else the
    online trainer alone, but for :data:`OFFLINE_INPUT`)."""

    name: str
    title: str
    keys: tuple[str, ...]
    every_mode: bool = False

    def short(self, key: str) -> str:
        """``key`` as written inside the group: ``teacher_decay`` is ``decay`` in ``teacher``."""
        return key.removeprefix(f"{self.name}_")

    def flat_key(self, written: str) -> str | None:
        """The flat name of ``written``, a key inside the group (short or full); ``None``: not one of its keys."""
        return next((key for key in self.keys if written in (key, self.short(key))), None)


SEMI_GROUPS = {
    group.name: group
    for group in (
        SemiGroup(
            "run",
            "mode, length, optimizer steps, resume, labeled images, the weights reported (every mode)",
            (
                "mode",
                "burn_in",
                "max_optimizer_steps",
                "max_grad_norm",
                "nonfinite_patience",
                "exact_resume",
                "keep_state",
                "init_state",
                "report_weights",
                "labeled_repeat",
                "labeled_mixup",
                "mixup_max_overlap",
                "labeled_mosaic",
                "mosaic_cache",
            ),
            every_mode=True,
        ),
        SemiGroup(
            "penalty",
            "the background penalty: weight, ramp after burn-in, form, background-FP metric (every mode)",
            (
                "lambda_bg",
                "lambda_bg_warmup",
                "lambda_bg_schedule",
                "bg_mode",
                "bg_normalize",
                "bg_gamma",
                "logit_clamp",
                "bg_fp_conf",
            ),
            every_mode=True,
        ),
        SemiGroup(
            "data",
            "images besides the labeled dataset: unlabeled, reviewed (online); stored pseudo-labels (offline)",
            ("unlabeled", "reviewed", "pseudo_labels", "unlabeled_ratio", "unlabeled_view", "empty_unlabeled"),
        ),
        SemiGroup(
            "teacher",
            "the mean teacher, and the weight of the loss on its pseudo-labels (online)",
            (
                "teacher_decay",
                "teacher_tau",
                "teacher_half_life",
                "teacher_min_half_life",
                "teacher_flip",
                "teacher_agreement",
                "teacher_scale",
                "teacher_fusion",
                "teacher_scales",
                "relabel_every",
                "validate_teacher",
                "ship",
                "lambda_unsup",
                "lambda_unsup_warmup",
            ),
        ),
        SemiGroup(
            "pseudo",
            "how the teacher's outputs become pseudo-labels, and what they teach (online)",
            (
                "pseudo_min_score",
                "pseudo_nms_iou",
                "filters",
                "dsat_holdout",
                "pseudo_trust",
                "negative_coverage",
                "pseudo_targets",
                "uncertain_targets",
                "cut_objects",
                "dense_fraction",
                "pseudo_mixup",
                "mixup_partners",
                "pseudo_mosaic",
                "oracle_pseudo_labels",
            ),
        ),
    )
}
GROUP_OF = {key: group for group in SEMI_GROUPS.values() for key in group.keys}  # each flat key's group
OFFLINE_INPUT = "pseudo_labels"  # the one key outside the every-mode groups that an offline run reads
SEMI_PATHS = ("unlabeled", "pseudo_labels", "reviewed", "init_state")  # settings that name a file or folder


def flatten_groups(block: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``block``, a ``semi:`` mapping with groups nested or not, by flat names, and the problems found, each naming
    its key (``semi.teacher.decay: given twice (also as semi.teacher_decay)``); a key of no group is left for the
    model's own check."""
    flat: dict[str, Any] = {}
    written_as: dict[str, str] = {}
    problems: list[str] = []
    for name, value in block.items():
        entries = _group_entries(name, value, problems) if name in SEMI_GROUPS else [(f"semi.{name}", name, value)]
        for written, key, setting in entries:
            if key in flat:
                problems.append(f"{written}: given twice (also as {written_as[key]})")
            flat[key], written_as[key] = setting, written
    return flat, problems


def _group_entries(name: str, value: Any, problems: list[str]) -> list[tuple[str, str, Any]]:
    """``(as written, flat name, value)`` of each key in the group ``name``; the problems go to ``problems``."""
    group = SEMI_GROUPS[name]
    if not isinstance(value, Mapping):
        shorts = ", ".join(map(group.short, group.keys))
        problems.append(f"semi.{name}: expected a mapping of the {name} keys ({shorts}), got {value!r}")
        return []
    entries = []
    for written, setting in value.items():
        key = group.flat_key(str(written))
        if key is None:
            problems.append(_not_in_group(group, str(written)))
        else:
            entries.append((f"semi.{name}.{written}", key, setting))
    return entries


def _not_in_group(group: SemiGroup, written: str) -> str:
    """What ``written``, not a key of ``group``, is: another group's key, or unknown with the closest of its own."""
    where = f"semi.{group.name}.{written}"
    for key in (written, f"{group.name}_{written}", *(f"{other}_{written}" for other in SEMI_GROUPS)):
        if key in GROUP_OF:
            home = GROUP_OF[key]
            return (
                f"{where}: not a {group.name} key; did you mean 'semi.{home.name}.{home.short(key)}'? (or semi.{key})"
            )
    shorts = [group.short(key) for key in group.keys]
    close = difflib.get_close_matches(written, shorts, n=1)
    hint = f"; did you mean 'semi.{group.name}.{close[0]}'?" if close else ""
    return f"{where}: unknown key{hint} (known in semi.{group.name}: {', '.join(shorts)})"


def flat_dotted_keys(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``settings`` with each dotted ``<prefix><group>.<key>`` (``semi.teacher.decay``, as an override writes it) by
    its flat name (``semi.teacher_decay``), so that it replaces the key however a config file writes it; any other
    key as it is.

    Raises:
        ConfigError: a key given twice, naming both spellings.
    """
    flat: dict[str, Any] = {}
    written_as: dict[str, str] = {}
    for dotted, value in settings.items():
        group, _, written = dotted.removeprefix(prefix).partition(".")
        key = SEMI_GROUPS[group].flat_key(written) if dotted.startswith(prefix) and group in SEMI_GROUPS else None
        key = f"{prefix}{key}" if key else dotted
        if key in flat:
            raise ConfigError(f"{dotted}: given twice (also as {written_as[key]})")
        flat[key], written_as[key] = value, dotted
    return flat
