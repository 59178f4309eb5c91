"""Datasets: the synthetic generator and the checks run before training."""

from .checks import check_detection_dataset, list_images
from .synth import CLASSES, SynthSpec, write_dataset

__all__ = ["CLASSES", "SynthSpec", "check_detection_dataset", "list_images", "write_dataset"]
