"""Datasets: the synthetic generator and the checks run before training."""

from .checks import check_detection_dataset, list_images
from .digits import DIGIT_NAMES, DigitsSpec, write_digits_dataset
from .split import choose_labeled, split_dataset
from .synth import CLASSES, SynthSpec, write_dataset

__all__ = [
    "CLASSES",
    "DIGIT_NAMES",
    "DigitsSpec",
    "SynthSpec",
    "check_detection_dataset",
    "choose_labeled",
    "list_images",
    "split_dataset",
    "write_dataset",
    "write_digits_dataset",
]
