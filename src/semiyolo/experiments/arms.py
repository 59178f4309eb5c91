"""The names of the fair protocol's arms (``kind`` in ``ablation.csv``); no imports, so the CLI reads them cheaply.

Besides the methods, the protocol runs a control for every way an arm differs from the labeled-only
continuation other than its pseudo-labels (docs/BENCHMARKS.md, "Controls"):

- ``supervised_continued_bg``: the labeled images alone with the online arms' background penalty (``lambda_bg``);
- ``supervised_continued_lr``: the labeled images alone at a larger learning rate (the online loss adds a second
  term, so its updates are larger); the best labeled-only continuation on validation is the baseline;
- ``supervised_continued_aug``: the labeled images alone with the augmentation an online arm adds
  (``semi.labeled_mixup`` for an arm's ``pseudo_mixup``).

``reviewed`` arms (``seed<s>/reviewed_k<k>_<order>``, :mod:`.review_arms`) measure what to label next: a simulated
reviewer corrects ``k`` unlabeled images with their hidden labels, chosen in one of :data:`REVIEW_ORDERS`, and the
run continues online like the other arms.
"""

CONVERGED = "supervised_converged"
CONTINUED = "supervised_continued"
CONTINUED_BG = "supervised_continued_bg"
CONTINUED_LR = "supervised_continued_lr"
CONTINUED_AUG = "supervised_continued_aug"
ORACLE = "oracle_continued"
FULLY_LABELED = "fully_labeled"
ONLINE = "online"  # a mean teacher's pseudo-labels, made as the student trains
OFFLINE = "offline"  # pseudo-labels the converged run made once, before the continuation
REVIEWED = "reviewed"  # online, after a simulated reviewer corrected k unlabeled images (with their hidden labels)
REVIEW_ORDERS = ("page", "random", "spread")  # how the k images are chosen (:mod:`.review_arms`)
FULLY_LABELED_CONTINUED = "fully_labeled_continued"  # the ceiling continued for the arms' budget, as long as they
SCRATCH = "online_scratch"  # the online method from the model .yaml on the converged run's schedule: a user's run
CONTROLS = (CONTINUED_BG, CONTINUED_LR, CONTINUED_AUG)  # labeled-only continuations that isolate one difference
BASELINES = (CONTINUED, CONTINUED_LR)  # labeled-only continuations of the config's recipe: the best is the baseline
CONTINUATIONS = (CONTINUED, *CONTROLS, ONLINE, OFFLINE, ORACLE, REVIEWED)  # continuing from the converged run
VARIANTS = "variants"  # ``--only variants``: the ``--variant`` online arms alone, not the online_bg* ones
VARIANT_LR_SCALE = "lr_scale"  # in ``--variant NAME:lr_scale=M,...``, and the row fact of an arm that set it


def labeled_only_at(scale: float) -> str:
    """The labeled-only continuation at ``scale`` times ``--continue-lr``: ``supervised_continued`` at 1, else its
    learning-rate control ``supervised_continued_lr<scale>`` (``_lr10``)."""
    return CONTINUED if scale == 1 else f"{CONTINUED_LR}{scale:g}"


FROM_SCRATCH = (CONVERGED, FULLY_LABELED, SCRATCH)  # trained from the model's .yaml, from step 0: not continuations
KINDS = (*FROM_SCRATCH, *CONTINUATIONS, FULLY_LABELED_CONTINUED)  # every arm's kind
ONLY_CHOICES = (*CONTINUATIONS, FULLY_LABELED, FULLY_LABELED_CONTINUED, VARIANTS, SCRATCH)  # ``semiyolo ablate --only``
