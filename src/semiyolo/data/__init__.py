"""Datasets: YOLO files read and written one way, a split's image lists, the checks run before training, the
labeled / unlabeled split, the synthetic generators and the real nuclei set."""

from .checks import check_detection_dataset
from .digits import DIGIT_NAMES, DigitsSpec, write_digits_dataset
from .files import (
    IMAGE_SUFFIXES,
    label_path,
    link,
    list_images,
    read_image_list,
    read_label_file,
    write_atomically,
    write_image_list,
    write_label_file,
)
from .lists import (
    dataset_root,
    held_out_train,
    pseudo_labeled_train,
    repeated_train,
    split_entries,
    split_holdout,
    split_images,
    train_images,
    yaml_entries,
)
from .nuclei import NUCLEI_NAMES, NucleiSpec, write_nuclei_dataset
from .split import choose_labeled, split_dataset
from .synth import CLASSES, SynthSpec, write_dataset

__all__ = [
    "CLASSES",
    "DIGIT_NAMES",
    "IMAGE_SUFFIXES",
    "NUCLEI_NAMES",
    "DigitsSpec",
    "NucleiSpec",
    "SynthSpec",
    "check_detection_dataset",
    "choose_labeled",
    "dataset_root",
    "held_out_train",
    "label_path",
    "link",
    "list_images",
    "pseudo_labeled_train",
    "read_image_list",
    "read_label_file",
    "repeated_train",
    "split_dataset",
    "split_entries",
    "split_holdout",
    "split_images",
    "train_images",
    "write_atomically",
    "write_dataset",
    "write_digits_dataset",
    "write_image_list",
    "write_label_file",
    "write_nuclei_dataset",
    "yaml_entries",
]
