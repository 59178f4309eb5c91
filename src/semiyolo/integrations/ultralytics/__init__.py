"""semiyolo on Ultralytics: every Ultralytics import of the project lives in this subpackage."""

from .api import check_train_args, prepare, train
from .criterion import BackgroundPenaltyDetectionLoss, build_criterion, penalized_criteria, set_lambda_bg
from .evaluate import background_false_positives
from .trainer import BackgroundPenaltyTrainer

__all__ = [
    "BackgroundPenaltyDetectionLoss",
    "BackgroundPenaltyTrainer",
    "background_false_positives",
    "build_criterion",
    "check_train_args",
    "penalized_criteria",
    "prepare",
    "set_lambda_bg",
    "train",
]
