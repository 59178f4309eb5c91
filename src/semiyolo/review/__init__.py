"""Reviewing pseudo-labels in the browser (``semiyolo review``): the most doubtful images first, boxes a person
accepts, deletes, draws, moves, resizes and relabels, written as YOLO labels into a reviewed folder.

- :mod:`.doubt`: how much a look at an image is worth (the list's order);
- :mod:`.sources`: the images served and their proposed boxes (a dataset split, a pseudo-label output), and the
  page's order (:func:`~.sources.page_order`);
- :mod:`.spread`: the page's order with near-duplicates counted once (thumbnail distances);
- :mod:`.store`: the reviewed folder (atomic label files, the review log) and :func:`reviewed_images`, which
  online training reads at each epoch's start;
- :mod:`.app`, :mod:`.server`: the FastAPI app and its server; ``static/``: the page (no build step).

Nothing here imports Ultralytics; labelling a run's unlabeled images with its checkpoint lives in
:mod:`semiyolo.integrations.ultralytics.review_source`. Only :mod:`.app` and :mod:`.server` need FastAPI.
"""

from .doubt import ScoredBox, box_doubts, image_worth
from .store import ReviewStore, reviewed_images, write_label_atomically

__all__ = ["ReviewStore", "ScoredBox", "box_doubts", "image_worth", "reviewed_images", "write_label_atomically"]
