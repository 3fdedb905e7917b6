
from .ava_metric import AVAFrameMAPMetric  # noqa: F401  (registration)
from .ava_random_baseline import random_score_map  # noqa: F401
from .tad_metric import TADmAPMetric, compute_tad_map  # noqa: F401  (registration)
