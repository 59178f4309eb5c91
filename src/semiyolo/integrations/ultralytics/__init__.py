"""semiyolo on Ultralytics: every Ultralytics import of the project lives in this subpackage.

Seams used (public): ``DetectionTrainer`` subclasses overriding ``get_dataset``, ``get_dataloader``,
``build_criterion`` (ours), ``preprocess_batch``, ``optimizer_step``, ``validate``, ``save_metrics``, ``save_model``,
``get_validator`` and ``auto_batch``; callbacks (``on_pretrain_routine_end``, ``on_train_epoch_start``,
``on_train_batch_start``, ``on_train_epoch_end``, ``on_train_end``); the validator's ``get_model``; ``E2ELoss``'s
``loss_fn``; ``Model.train(trainer=...)``.

Where Ultralytics offers no public seam, each in one place with its reason:

- ``OnlineTrainer._handle_nan_recovery`` (private method): the teacher must rewind with the student
  (:data:`.online.PRIVATE_OVERRIDES`; ``tests/test_house.py`` fails if upstream renames it);
- ``trainer.accumulate`` raised until a resumed run's first step, because Ultralytics' ``last_opt_step`` is a local
  of its loop (:mod:`.exact_resume`, which lists every assumption about the loop);
- ``trainer.last`` / ``trainer.best`` pointed at ``.part`` files during ``save_model``, for atomic checkpoints
  (:mod:`.checkpoints`).
"""

from .api import check_train_args, prepare, train, training_arguments, training_default
from .criterion import BackgroundPenaltyDetectionLoss, build_criterion, penalized_criteria, set_loss_weights
from .evaluate import background_false_positives, split_metrics
from .online import OnlineTrainer
from .semi_criterion import SemiSupervisedLoss
from .supervised import SupervisedTrainer
from .trainers import semi_trainer, trainer_class

__all__ = [
    "BackgroundPenaltyDetectionLoss",
    "OnlineTrainer",
    "SemiSupervisedLoss",
    "SupervisedTrainer",
    "background_false_positives",
    "build_criterion",
    "check_train_args",
    "penalized_criteria",
    "prepare",
    "semi_trainer",
    "set_loss_weights",
    "split_metrics",
    "train",
    "trainer_class",
    "training_arguments",
    "training_default",
]
