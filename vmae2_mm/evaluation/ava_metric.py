"""Frame-level AVA mAP@0.5 IoU with the official ActivityNet evaluator's semantics.

mmaction2's ``AVAMetric``/``ava_eval`` is "adapted from" the official script but differs where
it changes reported numbers (see :class:`AVAFrameMAPMetric`), writes a CSV into the working
directory and starts ``Pool(32)`` per evaluation. This module re-implements the official
``get_ava_performance.py`` + TF object-detection ``PascalDetectionEvaluator`` semantics in
memory (numpy 2 safe) and exposes the pieces as pure functions so they can be tested against
hand-computed fixtures.
"""
import csv
import heapq
import logging
import os
import os.path as osp
import re
from collections import OrderedDict, defaultdict
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

#: AVA category groups by action id (80-class AVA label map), as reported by mmaction2.
CATEGORY_GROUPS = (
    ('person_movement', lambda cid: cid <= 14),
    ('object_manipulation', lambda cid: 14 < cid < 64),
    ('person_interaction', lambda cid: cid >= 64),
)
#: Detections kept per keyframe by the official script (``read_csv(detections, ..., 50)``).
OFFICIAL_MAX_DETS_PER_FRAME = 50


class AVAFormatError(ValueError):
    """An AVA annotation / label-map / exclusion file is malformed (message names file+line)."""


def make_image_key(video_id: str, timestamp) -> str:
    """``'<video_id>,<%04d timestamp>'``, the key of a keyframe (official ``make_image_key``)."""
    return '%s,%04d' % (video_id, int(timestamp))


def read_labelmap(path: str) -> Tuple[List[dict], Set[int]]:
    """Read an AVA ``.pbtxt`` label map without protobuf.

    Accepts both layouts used by AVA: ``item { name: "..." id: N }`` (the ActivityNet 2019
    60-class list) and ``label { name: "..." label_id: N ... }`` (the 80-class list), one field
    per line or several per line.

    Args:
        path (str): Label-map file.

    Returns:
        tuple: ``categories`` (list of ``dict(id=int, name=str)`` in file order) and the set of
        class ids (the evaluation whitelist).

    Raises:
        AVAFormatError: No entries, an id without a name, a non-positive or duplicate id.
    """
    text = _read_text(path)
    categories, ids = [], set()
    entries = re.findall(r'\{([^{}]*)\}', text)
    for block in entries:
        name = re.search(r'\bname\s*:\s*"([^"]*)"', block)
        cid = re.search(r'\b(?:label_)?id\s*:\s*(-?\d+)', block)
        if cid is None:
            continue  # e.g. nested blocks of other fields; official parser skips them too
        if name is None:
            raise AVAFormatError(f'{path}: entry with id {cid.group(1)} has no name')
        cid = int(cid.group(1))
        if cid < 1:
            raise AVAFormatError(f'{path}: class ids must be >= 1 (1-indexed), got {cid}')
        if cid in ids:
            raise AVAFormatError(f'{path}: duplicate class id {cid}')
        categories.append(dict(id=cid, name=name.group(1)))
        ids.add(cid)
    if not categories:
        raise AVAFormatError(f'{path}: no "name"/"id" entries found; expected AVA pbtxt '
                             'blocks like item {{ name: "stand" id: 12 }}')
    return categories, ids


def read_exclusions(path: Optional[str]) -> Set[str]:
    """Read ``video_id,timestamp`` rows into a set of keyframe keys (empty for None)."""
    excluded = set()
    if not path:
        return excluded
    with open(path, newline='') as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 2:
                raise AVAFormatError(f'{path}:{lineno}: expected 2 columns '
                                     f'(video_id,timestamp), got {len(row)}: {row}')
            excluded.add(make_image_key(row[0], _parse_int(row[1], path, lineno)))
    return excluded


def read_ava_csv(path: str, class_whitelist: Optional[Set[int]] = None, capacity: int = 0):
    """Read AVA rows ``video_id,timestamp,x1,y1,x2,y2,action_id[,score_or_person_id]``.

    Official semantics: rows of classes outside ``class_whitelist`` are dropped; the 8th column
    is read as the score (the official script does this for ground truth too, where it is the
    person id, and then ignores the scores); with ``capacity > 0`` only the ``capacity``
    highest-scoring rows per keyframe are kept (a min-heap of ``(score, action_id, y1, x1, y2,
    x2)`` tuples); rows are returned per keyframe sorted by descending score (stable over the
    heap order).

    Args:
        path (str): CSV file.
        class_whitelist (set[int], optional): Class ids to keep.
        capacity (int): Max rows per keyframe; 0 = unlimited. Defaults to 0.

    Returns:
        tuple: dicts keyed by keyframe (first-appearance order): ``boxes`` (list of
        ``[y1, x1, y2, x2]``), ``labels`` (list of int), ``scores`` (list of float).
    """
    rows = []
    with open(path, newline='') as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) not in (7, 8):
                raise AVAFormatError(f'{path}:{lineno}: expected 7 or 8 columns, got '
                                     f'{len(row)}: {row}')
            try:
                box = [float(v) for v in row[2:6]]
                score = float(row[7]) if len(row) == 8 else 1.0
            except ValueError as e:
                raise AVAFormatError(f'{path}:{lineno}: non-numeric box/score: {row}') from e
            rows.append((row[0], _parse_int(row[1], path, lineno), box,
                         _parse_int(row[6], path, lineno), score))
    return group_rows(rows, class_whitelist, capacity)


def group_rows(rows: Iterable[tuple], class_whitelist: Optional[Set[int]] = None,
               capacity: int = 0):
    """Group ``(video_id, timestamp, [x1, y1, x2, y2], action_id, score)`` rows per keyframe
    exactly like the official ``read_csv`` (see :func:`read_ava_csv`)."""
    entries: Dict[str, list] = OrderedDict()
    for video_id, timestamp, (x1, y1, x2, y2), action_id, score in rows:
        if class_whitelist and action_id not in class_whitelist:
            continue
        key = make_image_key(video_id, timestamp)
        heap = entries.setdefault(key, [])
        item = (score, action_id, y1, x1, y2, x2)
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, item)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, item)
    boxes, labels, scores = OrderedDict(), OrderedDict(), OrderedDict()
    for key, heap in entries.items():
        entry = sorted(heap, key=lambda tup: -tup[0])
        boxes[key] = [list(t[2:]) for t in entry]
        labels[key] = [t[1] for t in entry]
        scores[key] = [t[0] for t in entry]
    return boxes, labels, scores


def box_iou_yxyx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of [N, 4] vs [M, 4] ``[y1, x1, y2, x2]`` boxes -> [N, M] (no +1, as TF np_box_ops)."""
    ay1, ax1, ay2, ax2 = np.split(a, 4, axis=1)
    by1, bx1, by2, bx2 = np.split(b, 4, axis=1)
    ih = np.maximum(np.zeros((a.shape[0], b.shape[0])),
                    np.minimum(ay2, by2.T) - np.maximum(ay1, by1.T))
    iw = np.maximum(np.zeros((a.shape[0], b.shape[0])),
                    np.minimum(ax2, bx2.T) - np.maximum(ax1, bx1.T))
    inter = ih * iw
    area_a = ((ay2 - ay1) * (ax2 - ax1))[:, 0]
    area_b = ((by2 - by1) * (bx2 - bx1))[:, 0]
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union


def tp_fp_single_class(det_boxes: np.ndarray, gt_boxes: np.ndarray,
                       iou_thr: float = 0.5) -> np.ndarray:
    """TP/FP flags of one frame's detections of one class (already in descending score order).

    Official per-image rule: each detection, in order, looks only at its max-IoU ground truth
    (first one on ties); TP if that IoU >= ``iou_thr`` and the GT is not matched yet, else FP
    (no fall-back to the second-best GT). All FP when the frame has no GT of the class.

    Args:
        det_boxes (np.ndarray): [N, 4] ``[y1, x1, y2, x2]``.
        gt_boxes (np.ndarray): [M, 4] ``[y1, x1, y2, x2]``.
        iou_thr (float): Matching threshold. Defaults to 0.5.

    Returns:
        np.ndarray: [N] bool, True = true positive.
    """
    tp = np.zeros(len(det_boxes), dtype=bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    iou = box_iou_yxyx(det_boxes, gt_boxes)
    best = np.argmax(iou, axis=1)
    matched = np.zeros(len(gt_boxes), dtype=bool)
    for i, g in enumerate(best):
        if iou[i, g] >= iou_thr and not matched[g]:
            tp[i] = True
            matched[g] = True
    return tp


def voc_average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """PASCAL VOC AP (all points, monotone precision envelope) as TF ``metrics.py`` computes it.

    Ranking uses ``np.argsort(scores)[::-1]`` like the official code (so exact ties keep its
    order). No detections -> 0.0; ``num_gt == 0`` -> NaN.

    Args:
        scores (np.ndarray): [K] detection scores of one class over all frames.
        tp (np.ndarray): [K] bool TP flags.
        num_gt (int): Ground-truth boxes of the class.

    Returns:
        float: AP in [0, 1] or NaN.
    """
    if num_gt == 0:
        return float('nan')
    if tp.sum() > num_gt:
        raise ValueError(f'{int(tp.sum())} true positives exceed {num_gt} ground truths')
    if scores.size == 0:
        return 0.0
    order = np.argsort(scores)[::-1]
    tps = tp.astype(int)[order]
    cum_tp = np.cumsum(tps)
    cum_fp = np.cumsum(1 - tps)
    precision = cum_tp.astype(float) / (cum_tp + cum_fp)
    recall = cum_tp.astype(float) / num_gt
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


def evaluate_frame_map(categories: Sequence[dict], gt, det, excluded_keys: Set[str] = frozenset(),
                       iou_thr: float = 0.5) -> Dict[int, float]:
    """Per-class frame AP with the official evaluator's semantics.

    Args:
        categories (list[dict]): ``dict(id, name)`` of the label map.
        gt (tuple): ``(boxes, labels)`` dicts from :func:`read_ava_csv` / :func:`group_rows`.
        det (tuple): ``(boxes, labels, scores)`` dicts, same layout.
        excluded_keys (set[str]): Keyframes ignored in both GT and detections.
        iou_thr (float): Defaults to 0.5.

    Returns:
        dict[int, float]: AP per category id (NaN for classes without ground truth).
    """
    gt_boxes, gt_labels = gt[0], gt[1]
    num_gt = defaultdict(int)
    gt_arrays = {}
    for key, boxes in gt_boxes.items():
        if key in excluded_keys:
            continue
        labels = np.asarray(gt_labels[key], dtype=int)
        gt_arrays[key] = (np.asarray(boxes, dtype=float).reshape(-1, 4), labels)
        for cid in labels:
            num_gt[int(cid)] += 1
    class_scores, class_tp = defaultdict(list), defaultdict(list)
    det_boxes, det_labels, det_scores = det
    for key, boxes in det_boxes.items():
        if key in excluded_keys:
            continue
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        labels = np.asarray(det_labels[key], dtype=int)
        scores = np.asarray(det_scores[key], dtype=float)
        # official per_image_evaluation drops degenerate detections (needs y1 < y2, x1 < x2)
        valid = (boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])
        boxes, labels, scores = boxes[valid], labels[valid], scores[valid]
        g_boxes, g_labels = gt_arrays.get(key, (np.zeros((0, 4)), np.zeros(0, dtype=int)))
        for cid in np.unique(labels):
            sel = labels == cid
            class_scores[int(cid)].append(scores[sel])
            class_tp[int(cid)].append(
                tp_fp_single_class(boxes[sel], g_boxes[g_labels == cid], iou_thr))
    aps = {}
    for cat in categories:
        cid = cat['id']
        if num_gt[cid] == 0:
            aps[cid] = float('nan')
            continue
        scores = (np.concatenate(class_scores[cid]) if class_scores[cid] else np.zeros(0))
        tp = (np.concatenate(class_tp[cid]) if class_tp[cid] else np.zeros(0, dtype=bool))
        aps[cid] = voc_average_precision(scores, tp, num_gt[cid])
    return aps


def summarize_aps(categories: Sequence[dict], aps: Dict[int, float]) -> 'OrderedDict[str, float]':
    """``overall`` (mean over classes with GT), the three AVA category means and per-class APs.

    Returns:
        OrderedDict: ``overall``, ``person_movement``, ``object_manipulation``,
        ``person_interaction`` (NaN when a group has no class with GT), then
        ``AP/<id> <name>`` per label-map class (NaN without GT).
    """
    def nanmean(values):
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float('nan')

    out = OrderedDict(overall=nanmean(aps.values()))
    for group, member in CATEGORY_GROUPS:
        out[group] = nanmean([ap for cid, ap in aps.items() if member(cid)])
    for cat in categories:
        out[f"AP/{cat['id']:02d} {cat['name']}"] = aps[cat['id']]
    return out


@METRICS.register_module()
class AVAFrameMAPMetric(BaseMetric):
    """Frame-level AVA mAP@0.5 IoU, reproducing the official ActivityNet evaluator.

    Reproduces ``get_ava_performance.py`` (activitynet/ActivityNet, ``Evaluation/``) with the
    TF object-detection ``PascalDetectionEvaluator`` it calls:

    * classes: the label-map whitelist (use the 60-class ActivityNet-2019 list for AVA v2.x);
      GT and detection rows of other classes are dropped; AP is NaN for classes without GT and
      the mean (``overall``) is over classes **with** GT only;
    * a class **with GT but no detection** has AP 0 and counts in the mean (mmaction2 omits it);
      a class with detections but no GT is ignored (mmaction2 gives NaN / crashes on numpy 2);
    * excluded timestamps are removed from both GT and detections;
    * **detections on keyframes without any GT are false positives** (mmaction2 ignores them);
    * only the 50 highest-scoring (box, class) detections per keyframe are kept
      (``max_dets_per_frame``; official heap semantics, ties as in the official code);
    * degenerate detections (``x2 <= x1`` or ``y2 <= y1``) are dropped;
    * per keyframe and class, detections in descending score order each look only at their
      max-IoU GT (no fall-back): TP if IoU >= 0.5 and that GT is still unmatched;
    * AP: VOC all-points AP with a monotone precision envelope, ranking with
      ``np.argsort(scores)[::-1]``.

    Not reproduced: the official path reads detections from a CSV, so it sees the rounding of
    whatever wrote the CSV (mmaction2 writes 4 decimals); we evaluate full-precision values
    (``out_csv`` writes 6 decimals if you want to run the official script on our output).
    Category means (mmaction2's grouping of the 80-class ids: ``person_movement`` id <= 14,
    ``object_manipulation`` 14 < id < 64, ``person_interaction`` id >= 64) are extras.

    Args:
        ann_file (str): GT CSV (``ava_val_v2.2.csv``).
        label_file (str): Label map pbtxt (the evaluated classes).
        exclude_file (str, optional): Excluded-timestamps CSV. Defaults to None.
        num_classes (int): Score columns of the model incl. background column 0. Defaults to 81.
        custom_classes (list[int], optional): As in ``AVADataset``: score column ``j >= 1`` is
            class ``custom_classes[j - 1]``. Defaults to None (column j is class id j).
        action_thr (float): Scores <= this are not emitted as detections (as mmaction2).
            Defaults to 0.002.
        max_dets_per_frame (int): Official per-keyframe capacity; 0 = unlimited. Defaults to 50.
        iou_thr (float): Defaults to 0.5.
        out_csv (str, optional): Also write detections as an official-format CSV.
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Defaults to ``'mAP'``.
    """
    default_prefix: Optional[str] = 'mAP'

    def __init__(self,
                 ann_file: str,
                 label_file: str,
                 exclude_file: Optional[str] = None,
                 num_classes: int = 81,
                 custom_classes: Optional[List[int]] = None,
                 action_thr: float = 0.002,
                 max_dets_per_frame: int = OFFICIAL_MAX_DETS_PER_FRAME,
                 iou_thr: float = 0.5,
                 out_csv: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        for name, path in (('ann_file', ann_file), ('label_file', label_file),
                           ('exclude_file', exclude_file)):
            if path is not None and not osp.isfile(path):
                raise FileNotFoundError(f'AVAFrameMAPMetric.{name}: file not found: {path}')
        if num_classes < 2:
            raise ValueError(f'AVAFrameMAPMetric.num_classes must be >= 2 (background + '
                             f'classes), got {num_classes}')
        if custom_classes is not None and len(custom_classes) != num_classes - 1:
            raise ValueError(f'AVAFrameMAPMetric.custom_classes has {len(custom_classes)} ids '
                             f'but num_classes - 1 = {num_classes - 1}')
        if not 0 < iou_thr <= 1:
            raise ValueError(f'AVAFrameMAPMetric.iou_thr must be in (0, 1], got {iou_thr}')
        if max_dets_per_frame < 0:
            raise ValueError('AVAFrameMAPMetric.max_dets_per_frame must be >= 0, got '
                             f'{max_dets_per_frame}')
        self.ann_file = ann_file
        self.label_file = label_file
        self.exclude_file = exclude_file
        self.num_classes = num_classes
        self.custom_classes = list(custom_classes) if custom_classes is not None else None
        self.action_thr = action_thr
        self.max_dets_per_frame = max_dets_per_frame
        self.iou_thr = iou_thr
        self.out_csv = out_csv
        self.categories, self.class_whitelist = read_labelmap(label_file)
        if self.custom_classes is not None:
            unknown = set(self.custom_classes) - self.class_whitelist
            if unknown:
                raise ValueError(f'AVAFrameMAPMetric.custom_classes {sorted(unknown)} are not '
                                 f'in the label map {label_file}')

    def column_class_ids(self) -> np.ndarray:
        """[num_classes - 1] class id of each non-background score column."""
        if self.custom_classes is not None:
            return np.asarray(self.custom_classes, dtype=int)
        return np.arange(1, self.num_classes, dtype=int)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each keyframe's boxes [N, 4] (normalised x1y1x2y2) and scores [N, num_classes]."""
        for sample in data_samples:
            pred = sample['pred_instances']
            scores = np.asarray(pred['scores'].detach().cpu().numpy(), dtype=np.float64)
            if scores.ndim != 2 or scores.shape[1] != self.num_classes:
                raise ValueError(f'AVAFrameMAPMetric: pred scores must be [N, num_classes='
                                 f'{self.num_classes}], got {tuple(scores.shape)}')
            self.results.append(dict(
                video_id=sample['video_id'], timestamp=int(sample['timestamp']),
                bboxes=np.asarray(pred['bboxes'].detach().cpu().numpy(), dtype=np.float64),
                scores=scores))

    def detection_rows(self, results: list) -> List[tuple]:
        """Rows ``(video_id, timestamp, [x1, y1, x2, y2], class_id, score)`` above
        ``action_thr``, in result order then box order then class order (as mmaction2's CSV)."""
        ids = self.column_class_ids()
        rows = []
        for res in results:
            scores = res['scores'][:, 1:]
            for n, box in enumerate(res['bboxes']):
                keep = np.nonzero(scores[n] > self.action_thr)[0]
                rows.extend((res['video_id'], res['timestamp'], [float(v) for v in box],
                             int(ids[j]), float(scores[n, j])) for j in keep)
        return rows

    def compute_metrics(self, results: list) -> dict:
        rows = self.detection_rows(results)
        if self.out_csv:
            os.makedirs(osp.dirname(osp.abspath(self.out_csv)), exist_ok=True)
            with open(self.out_csv, 'w', newline='') as f:
                writer = csv.writer(f)
                for vid, ts, box, cid, score in rows:
                    writer.writerow([vid, '%04d' % ts] + ['%.6f' % v for v in box] +
                                    [cid, '%.6f' % score])
        whitelist = set(self.class_whitelist)
        if self.custom_classes is not None:
            whitelist &= set(self.custom_classes)
        categories = [c for c in self.categories if c['id'] in whitelist]
        gt = read_ava_csv(self.ann_file, whitelist)
        det = group_rows(rows, whitelist, self.max_dets_per_frame)
        excluded = read_exclusions(self.exclude_file)
        aps = evaluate_frame_map(categories, gt, det, excluded, self.iou_thr)
        metrics = summarize_aps(categories, aps)
        print_log('AVA frame mAP@{}: overall {:.4f} over {} classes with GT ({} detections on '
                  '{} keyframes)'.format(self.iou_thr, metrics['overall'],
                                         int(sum(not np.isnan(a) for a in aps.values())),
                                         len(rows), len(results)),
                  logger='current', level=logging.INFO)
        return dict(metrics)


def _read_text(path: str) -> str:
    if not osp.isfile(path):
        raise FileNotFoundError(f'file not found: {path}')
    with open(path) as f:
        return f.read()


def _parse_int(value: str, path: str, lineno: int) -> int:
    try:
        return int(value)
    except ValueError as e:
        raise AVAFormatError(f'{path}:{lineno}: expected an integer, got {value!r}') from e


__all__ = ['AVAFrameMAPMetric', 'AVAFormatError', 'read_labelmap', 'read_exclusions',
           'read_ava_csv', 'group_rows', 'evaluate_frame_map', 'summarize_aps',
           'voc_average_precision', 'tp_fp_single_class', 'make_image_key']
