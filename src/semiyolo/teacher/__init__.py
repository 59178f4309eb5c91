"""The mean-teacher unit (torch only): the teacher EMA, its pseudo-labels, the strong view, and the batch the
student trains on."""

from .audit import PseudoLabelAudit
from .ema import TeacherEMA
from .labeler import VIEW_FUSION, TeacherPseudoLabeler
from .mean_teacher import EMPTY_UNLABELED, ORACLE_BOXES, MeanTeacher
from .mixup import MIXUP_PARTNERS, draw_partners, mix_labeled, mix_pseudo_labeled
from .mosaic import MosaicCache, mosaic_rows

__all__ = [
    "EMPTY_UNLABELED",
    "MIXUP_PARTNERS",
    "ORACLE_BOXES",
    "VIEW_FUSION",
    "MeanTeacher",
    "MosaicCache",
    "PseudoLabelAudit",
    "TeacherEMA",
    "TeacherPseudoLabeler",
    "draw_partners",
    "mix_labeled",
    "mix_pseudo_labeled",
    "mosaic_rows",
]
