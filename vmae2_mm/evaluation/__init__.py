
from .ava_metric import AVAFrameMAPMetric  # noqa: F401  (registration)
from .tad_metric import TADmAPMetric, compute_tad_map  # noqa: F401  (registration)
