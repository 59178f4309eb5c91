"""semiyolo: semi-supervised Ultralytics YOLO with a background penalty, and a library of dense-detector losses.

The core subpackages (:mod:`semiyolo.losses`, :mod:`semiyolo.boxes`, :mod:`semiyolo.criteria`) depend on
PyTorch alone; everything that touches Ultralytics lives in :mod:`semiyolo.integrations.ultralytics`.
"""

__version__ = "0.1.0"
