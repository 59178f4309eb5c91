"""Experiment drivers on top of the Ultralytics integration: the fair-protocol ablation (``semiyolo ablate``),
the demo (``semiyolo demo``) and their reports (tables and plots)."""
