"""Chance level of AVA frame-mAP: uniformly random class scores on the tested proposals."""
from typing import Optional

import numpy as np
import torch

from vmae2_mm.evaluation.ava_metric import AVAFrameMAPMetric


def random_score_map(ann_file: str, exclude_file: Optional[str], label_file: str,
                     proposal_file: str, timestamp_start: int = 900,
                     timestamp_end: int = 1800, seeds: int = 5,
                     num_classes: int = 81) -> float:
    """Frame-mAP@0.5 of uniformly random scores for every class of every proposal.

    The proposals are those a detector is tested on (same :class:`AVADatasetChecked`
    thresholding and excluded timestamps) and the metric is :class:`AVAFrameMAPMetric`, so the
    value is the chance level a trained detector must beat (about the prevalence of each action
    among the proposals). Averaged over ``seeds`` random draws.

    Args:
        ann_file (str): Ground-truth CSV (``ava_val_v2.2.csv`` layout).
        exclude_file (str, optional): Excluded-timestamps CSV.
        label_file (str): Label-map pbtxt (evaluated classes).
        proposal_file (str): Proposals pickle ``{'<video>,<%04d ts>': [K, 5]}``.
        timestamp_start (int): First second of the videos. Defaults to 900.
        timestamp_end (int): Last second of the videos. Defaults to 1800.
        seeds (int): Random draws to average. Defaults to 5.
        num_classes (int): Score columns (80 AVA classes + background). Defaults to 81.

    Returns:
        float: mean overall frame-mAP over the draws.
    """
    from vmae2_mm.datasets import AVADatasetChecked
    ds = AVADatasetChecked(ann_file=ann_file, exclude_file=exclude_file, label_file=label_file,
                           proposal_file=proposal_file, pipeline=[], test_mode=True,
                           timestamp_start=timestamp_start, timestamp_end=timestamp_end)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    maps = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        metric = AVAFrameMAPMetric(ann_file=ann_file, label_file=label_file,
                                   exclude_file=exclude_file)
        samples = []
        for info in infos:
            props = info['proposals']  # [K, 4] boxes the detector would score
            samples.append(dict(video_id=info['video_id'], timestamp=info['timestamp'],
                                pred_instances=dict(
                                    bboxes=torch.from_numpy(props),
                                    scores=torch.from_numpy(
                                        rng.uniform(size=(len(props), num_classes))))))
        metric.process(None, samples)
        maps.append(metric.compute_metrics(metric.results)['overall'])
    return float(np.mean(maps))


__all__ = ['random_score_map']
