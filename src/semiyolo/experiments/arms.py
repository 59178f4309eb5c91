"""The names of the fair protocol's arms (``kind`` in ``ablation.csv``); no imports, so the CLI reads them cheaply."""

CONVERGED = "supervised_converged"
CONTINUED = "supervised_continued"
ORACLE = "oracle_continued"
FULLY_LABELED = "fully_labeled"
CONTINUATIONS = (CONTINUED, "online", "offline", ORACLE)  # the arms that continue from the converged run
ARM_KINDS = (*CONTINUATIONS, FULLY_LABELED)  # what ``semiyolo ablate --only`` chooses from
