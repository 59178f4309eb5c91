"""semiyolo on Ultralytics: every Ultralytics import of the project lives in this subpackage."""

from .api import check_train_args, prepare, train
from .criterion import BackgroundPenaltyDetectionLoss, build_criterion, penalized_criteria, set_lambda_bg
from .evaluate import background_false_positives
from .semi_criterion import SemiSupervisedLoss
from .semi_trainer import SemiSupervisedTrainer
from .trainer import BackgroundPenaltyTrainer

__all__ = [
    "BackgroundPenaltyDetectionLoss",
    "BackgroundPenaltyTrainer",
    "SemiSupervisedLoss",
    "SemiSupervisedTrainer",
    "background_false_positives",
    "build_criterion",
    "check_train_args",
    "penalized_criteria",
    "prepare",
    "set_lambda_bg",
    "train",
]
