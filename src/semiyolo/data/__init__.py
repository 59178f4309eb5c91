"""Datasets: the synthetic generator and the checks run before training."""

from .checks import (
    check_detection_dataset,
    dataset_root,
    label_path,
    list_images,
    read_label_file,
    split_entries,
)
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
    "dataset_root",
    "label_path",
    "list_images",
    "read_label_file",
    "split_dataset",
    "split_entries",
    "write_dataset",
    "write_digits_dataset",
]
