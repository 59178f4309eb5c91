"""The names of the fair protocol's arms (``kind`` in ``ablation.csv``); no imports, so the CLI reads them cheaply."""

CONVERGED = "supervised_converged"
CONTINUED = "supervised_continued"
ORACLE = "oracle_continued"
FULLY_LABELED = "fully_labeled"
CONTINUATIONS = (CONTINUED, "online", "offline", ORACLE)  # the arms that continue from the converged run
VARIANTS = "variants"  # ``--only variants``: the ``--variant`` online arms alone, not the online_bg* ones
ONLY_CHOICES = (*CONTINUATIONS, FULLY_LABELED, VARIANTS)  # what ``semiyolo ablate --only`` chooses from
