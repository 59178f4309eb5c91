"""semiyolo on Ultralytics: every Ultralytics import of the project lives in this subpackage."""

from .criterion import BackgroundPenaltyDetectionLoss, build_criterion, penalized_criteria, set_lambda_bg

__all__ = ["BackgroundPenaltyDetectionLoss", "build_criterion", "penalized_criteria", "set_lambda_bg"]
