"""The online trainer's data-side parts: the stream of unlabeled batches and its position, and the images a person
reviewed (``semi.reviewed``), which leave that stream and join the labeled training or validation images.

Each part holds the trainer it serves, is called by :class:`~.online.OnlineTrainer` at a named point of
Ultralytics' loop, and keeps what a resume needs in its ``state_dict``.
"""

from __future__ import annotations

import os
from copy import copy
from pathlib import Path
from typing import Any

from torch import Tensor
from ultralytics.utils import LOCAL_RANK, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ...data import split_images, train_images, write_image_list
from ...review import reviewed_images
from .unlabeled import (
    UnlabeledImages,
    UnlabeledYOLODataset,
    readable_images,
    ultralytics_view_batches,
    unlabeled_batches,
)


class ReviewedImages:
    """Images a person reviewed (``semi.reviewed``, ``semiyolo review``), taken at an epoch's start: a validation
    image's reviewed labels replace its own in validation; any other reviewed image joins the labeled training
    images, repeated ``labeled_repeat`` times like them (and leaves the unlabeled stream)."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.labeled_train: list[Path] = []  # the labeled training list (repeats included), before reviews
        self.training: list[Path] = []  # reviewed images trained as labeled
        self.validation: list[Path] = []  # reviewed validation images: their labels replace the originals

    def after_setup(self) -> None:
        self.labeled_train = train_images(self.trainer.data)

    def take_new(self) -> bool:
        """The images reviewed since the last call; whether any joins the training images (the training loader
        and the unlabeled stream must then be rebuilt)."""
        t = self.trainer
        known = {p.resolve() for p in (*self.training, *self.validation)}
        new = [p for p in reviewed_images(t.semi.reviewed) if p.resolve() not in known]
        val = {p.resolve(): p for p in split_images(t.data, t.args.split)}
        edits = [p for p in new if p.resolve() in val]
        if edits:
            self.validation += edits
            self.use_validation_labels(list(val.values()))
        self.training += [p for p in new if p not in edits]
        if new:
            LOGGER.info(f"{len(new)} reviewed image(s) from {t.semi.reviewed}: {len(edits)} for validation")
        return len(edits) < len(new)

    def labeled_loader(self):
        """Ultralytics' training loader over the labeled images and the reviewed ones (a list in the run folder)."""
        t = self.trainer
        listing = t.save_dir / "labeled_with_reviewed.txt"
        write_image_list(listing, self.labeled_train + self.training * t.semi.labeled_repeat)
        loader = t.get_dataloader(str(listing), batch_size=t.batch_size, rank=LOCAL_RANK)
        if t.mosaic_closed and hasattr(loader.dataset, "close_mosaic"):
            loader.dataset.close_mosaic(hyp=copy(t.args))
        return loader

    def use_validation_labels(self, val_images: list[Path]) -> None:
        """Validate on ``val_images`` with each reviewed one replaced by its link in the reviewed folder (whose
        label file is the person's); the final evaluation reuses the validator's loader."""
        t = self.trainer
        edited = {p.resolve(): p for p in self.validation}
        listing = t.save_dir / "val_with_reviewed.txt"
        write_image_list(listing, [edited.get(p.resolve(), p) for p in val_images])
        batch = t.test_loader.batch_size
        t.test_loader = t.get_dataloader(str(listing), batch_size=batch, rank=LOCAL_RANK, mode="val")
        t.validator.dataloader = t.test_loader

    def state_dict(self) -> dict[str, Any]:
        return {"training": [str(p) for p in self.training], "validation": [str(p) for p in self.validation]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """On a resume, before the training loader's order and mosaic buffer are restored: the reviewed images the
        run had taken, and the loaders rebuilt with them as they were then (images reviewed since join at the next
        epoch's start, as in a run that never stopped)."""
        t = self.trainer
        self.training = [Path(p) for p in state["training"]]
        self.validation = [Path(p) for p in state["validation"]]
        if self.validation:
            self.use_validation_labels(split_images(t.data, t.args.split))
        if self.training:
            t.train_loader = self.labeled_loader()


class UnlabeledStream:
    """The unlabeled batches, ``unlabeled_ratio`` per labeled image, this rank's shard, letterboxed or through
    Ultralytics' own transforms (``semi.unlabeled_view``); its position (batches drawn) is saved, so a resumed run
    draws what an unbroken one would have."""

    def __init__(self, trainer, reviewed: ReviewedImages) -> None:
        self.trainer = trainer
        self.reviewed = reviewed
        self.batches = None  # the iterator, opened after set-up
        self.consumed = 0  # batches drawn from it
        self.mosaic = False  # whether the Ultralytics view still has mosaic
        self.dataset: UnlabeledYOLODataset | None = None  # the Ultralytics view's dataset
        self.files: list[str] = []  # the current batch's images

    def images(self) -> list[Path]:
        """The readable images of ``semi.unlabeled`` that no one has reviewed yet."""
        done = {p.resolve() for p in self.reviewed.training}
        return [p for p in readable_images(self.trainer.semi.unlabeled)[0] if p.resolve() not in done]

    def open(self) -> None:
        """(Re)open the stream where it stands, on the images not yet reviewed."""
        t = self.trainer
        world = int(os.environ.get("WORLD_SIZE", 1))
        batch = max(1, round(t.batch_size * t.semi.unlabeled_ratio / max(world, 1)))
        order = {"rank": RANK, "world_size": world, "skip": self.consumed}
        loading = {"workers": self.workers(world), "pin_memory": t.device.type == "cuda"}
        paths = self.images()
        if t.semi.unlabeled_view == "ultralytics":
            folder = str(write_image_list(t.save_dir / "unlabeled.txt", paths)) if self.reviewed.training else None
            self.dataset = self.view_dataset(folder or t.semi.unlabeled, batch)
            self.mosaic = not t.mosaic_closed
            self.batches = ultralytics_view_batches(self.dataset, batch, t.args.seed, **order, **loading)
        else:
            dataset = UnlabeledImages(paths, t.args.imgsz)
            self.batches = unlabeled_batches(dataset, batch, t.args.seed, **order, **loading)

    def workers(self, world: int) -> int:
        """Loader processes: ``train.workers``, capped as Ultralytics caps its own (the cores shared by ranks)."""
        return min((os.cpu_count() or 1) // max(world, 1), self.trainer.args.workers)

    def view_dataset(self, folder: str, batch: int) -> UnlabeledYOLODataset:
        """The unlabeled folder through the labeled images' mosaic, affine and flip settings; colour is left to
        the student's strong view, and mixing (mixup, cutmix, copy-paste) needs labels, so they are off."""
        t = self.trainer
        hyp = copy(t.args)
        hyp.hsv_h = hyp.hsv_s = hyp.hsv_v = hyp.mixup = hyp.cutmix = hyp.copy_paste = 0.0
        if t.mosaic_closed:
            hyp.mosaic = 0.0
        return UnlabeledYOLODataset(
            img_path=folder,
            imgsz=t.args.imgsz,
            batch_size=batch,
            augment=True,
            hyp=hyp,
            rect=False,
            stride=int(unwrap_model(t.model).stride.max()),
            prefix="semi.unlabeled: ",
            data=t.data,
        )

    def next(self) -> tuple[Tensor, list]:
        """The next batch: ``Tensor[U, 3, H, W]`` uint8 weak views and their hidden labels (for the audit)."""
        images, hidden, self.files = next(self.batches)
        self.consumed += 1
        return images, hidden

    def begin_epoch(self) -> None:
        """Where Ultralytics closes mosaic, the Ultralytics view closes it too (the same order, from where it
        was), so the teacher labels the scale the student now trains at."""
        if self.trainer.mosaic_closed and self.mosaic:
            self.open()

    def state_dict(self) -> dict[str, Any]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.consumed = state["consumed"]
