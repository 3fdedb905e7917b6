"""ActivityNet-style detection mAP for temporal action detection (THUMOS14, FineAction).

Semantics follow ActivityNet's ``eval_detection.py`` as adapted by ActionFormer's
``ANETdetection`` (``libs/utils/metrics.py``):

* GT: videos of the requested subset (compared lower-cased); segments shorter than ``tol``
  (1e-3 s) and duplicates (same label, start and end each within ``tol``) are dropped.
* Per class, predictions of all videos are ranked by score. Each prediction is matched, per
  tIoU threshold, to the unmatched GT of its video and class with the highest tIoU, if that
  tIoU >= the threshold; otherwise it is a false positive.
* AP = VOC-2011 all-point interpolated area under precision/recall; mAP at a threshold = mean
  AP over the classes that have GT (a class without predictions scores 0); the average mAP is
  the mean over thresholds.

Two evaluators differ only where the data is ambiguous:

* ``'activitynet'`` (default): score ties keep their input order (a stable sort); a predicted
  label that no GT carries is ignored; thresholds are used as given.
* ``'actionformer'``: ActionFormer's ``ANETdetection`` exactly, for comparing with numbers
  published from it: (1) predictions are ranked with its ``scores.argsort()[::-1]`` (numpy's
  default sort, reversed: ties come out in the order numpy leaves them, e.g. later input first
  for short arrays); (2) GT labels are replaced by their rank among the sorted GT classes and
  predicted labels go through the same ``DataFrame.replace``, which leaves an id without GT as
  it is, so it is scored as the class whose rank equals it (GT classes {0, 2}: a prediction
  labelled 1 counts for class 2); (3) evenly spaced thresholds are rebuilt as
  ``np.linspace(first, last, n)`` as its datasets define them (THUMOS14's 0.4 becomes
  0.39999999999999997, so a tIoU of 0.39999999999999997 matches there and not here).

mmaction2's ``ActivityNetLocalization`` / ``compute_average_precision_detection`` implement the
``'activitynet'`` matching (the tests check exact agreement) but compute tIoU in float32, walk a
list of dicts per prediction (~5x slower on a THUMOS-sized set, see
``benchmarks/bench_tad_map.py``), do not drop short/duplicate GT and assume ActivityNet's ``v_``
id prefix, so the computation is re-implemented here, vectorised over thresholds and restricted
to overlapping predictions.
"""
import os
import os.path as osp
from collections import OrderedDict, defaultdict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement

from ..datasets.tad_feature_dataset import class_names_from_database, load_tad_database

THUMOS14_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
FINEACTION_TIOUS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
EVALUATORS = ('activitynet', 'actionformer')


def clean_gt_segments(segments: np.ndarray, labels: np.ndarray, tol: float = 1e-3
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Drop GT shorter than ``tol`` seconds and duplicates (same label, both ends within
    ``tol`` of an earlier kept GT), keeping first occurrences in order.

    Args:
        segments (ndarray): [M, 2] seconds.
        labels (ndarray): [M] class ids.
        tol (float): Tolerance in seconds. Defaults to 1e-3.

    Returns:
        tuple: kept segments [M', 2] float64 and labels [M'] int64.
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    keep: List[int] = []
    for i, ((s, e), lab) in enumerate(zip(segments, labels)):
        if e - s < tol:
            continue
        if any(labels[j] == lab and abs(segments[j, 0] - s) <= tol
               and abs(segments[j, 1] - e) <= tol for j in keep):
            continue
        keep.append(i)
    return segments[keep], labels[keep]


def segment_tiou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise temporal IoU (float64, no epsilon).

    Args:
        a (ndarray): [P, 2] segments.
        b (ndarray): [G, 2] segments.

    Returns:
        ndarray: [P, G] intersection / union.
    """
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1])
                    - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        return inter / union


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 all-point interpolated AP.

    Args:
        precision (ndarray): [P] precision after each ranked prediction.
        recall (ndarray): [P] recall after each ranked prediction.

    Returns:
        float: Area under the precision envelope, summed where recall changes.
    """
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def actionformer_tious(tious: Sequence[float]) -> np.ndarray:
    """Thresholds as ActionFormer's datasets build them: evenly spaced ones as
    ``np.linspace(first, last, n)`` (e.g. THUMOS14's ``np.linspace(0.3, 0.7, 5)``), any other
    list as given.

    Args:
        tious (Sequence[float]): [N_t] thresholds.

    Returns:
        ndarray: [N_t] float64 thresholds.
    """
    t = np.asarray(tious, dtype=np.float64).reshape(-1)
    if len(t) > 2 and not np.allclose(np.diff(t), t[1] - t[0], rtol=0, atol=1e-9):
        return t
    return np.linspace(t[0], t[-1], len(t)) if len(t) else t


def _class_ap(gt_by_video: Dict[str, np.ndarray], pred_videos: np.ndarray,
              pred_segments: np.ndarray, pred_scores: np.ndarray,
              tious: np.ndarray, stable: bool = True) -> np.ndarray:
    """AP of one class at every threshold.

    Args:
        gt_by_video (dict): video id -> [G_v, 2] GT segments of this class.
        pred_videos (ndarray): [P] video id of each prediction (object array).
        pred_segments (ndarray): [P, 2] seconds.
        pred_scores (ndarray): [P].
        tious (ndarray): [N_t] thresholds.
        stable (bool): Rank ties in input order; False: ActionFormer's
            ``argsort()[::-1]``. Defaults to True.

    Returns:
        ndarray: [N_t] AP.
    """
    npos = sum(len(g) for g in gt_by_video.values())
    num_preds = len(pred_scores)
    if num_preds == 0 or npos == 0:
        return np.zeros(len(tious))
    order = np.argsort(-pred_scores, kind='stable') if stable else pred_scores.argsort()[::-1]
    pred_videos, pred_segments = pred_videos[order], pred_segments[order]
    tp = np.zeros((len(tious), num_preds))
    min_thr = tious.min()
    # Matching only interacts within one video, so each video is matched on its own (ranks in
    # the global order are preserved inside the group).
    groups: Dict[str, List[int]] = defaultdict(list)
    for rank, vid in enumerate(pred_videos):
        groups[vid].append(rank)
    for vid, ranks in groups.items():
        gts = gt_by_video.get(vid)
        if gts is None or len(gts) == 0:
            continue  # every prediction here is a false positive
        ranks = np.asarray(ranks)
        tiou = segment_tiou(pred_segments[ranks], gts)  # [P_v, G_v]
        locked = np.zeros((len(tious), len(gts)), dtype=bool)
        # Predictions overlapping no GT enough for the lowest threshold are FPs everywhere.
        for k in np.nonzero(tiou.max(axis=1) >= min_thr)[0]:
            row = tiou[k]
            by_tiou = row.argsort()[::-1]  # upstream's GT visiting order, ties included
            ok = (row[by_tiou][None, :] >= tious[:, None]) & ~locked[:, by_tiou]
            hit = ok.any(axis=1)
            if not hit.any():
                continue
            thr_idx = np.nonzero(hit)[0]
            gt_idx = by_tiou[ok.argmax(axis=1)[thr_idx]]
            locked[thr_idx, gt_idx] = True
            tp[thr_idx, ranks[k]] = 1
    tp_cum = np.cumsum(tp, axis=1)
    fp_cum = np.cumsum(1 - tp, axis=1)
    recall = tp_cum / npos
    precision = tp_cum / (tp_cum + fp_cum)
    return np.array([interpolated_ap(precision[i], recall[i]) for i in range(len(tious))])


def compute_tad_map(gt: Mapping[str, Mapping[str, np.ndarray]],
                    preds: Mapping[str, Mapping[str, np.ndarray]],
                    tious: Sequence[float] = THUMOS14_TIOUS,
                    tol: Optional[float] = 1e-3, evaluator: str = 'activitynet') -> dict:
    """Detection mAP over tIoU thresholds (pure function; see the module docstring).

    Args:
        gt (Mapping): video id -> ``dict(segments=[M, 2] seconds, labels=[M] int)``.
        preds (Mapping): video id -> ``dict(segments=[K, 2] seconds, scores=[K],
            labels=[K] int)``.
        tious (Sequence[float]): tIoU thresholds. Defaults to THUMOS14's 0.3:0.1:0.7.
        tol (float, optional): GT clean-up tolerance in seconds (:func:`clean_gt_segments`);
            None keeps the GT as given. Defaults to 1e-3.
        evaluator (str): ``'activitynet'`` or ``'actionformer'`` (see the module docstring).
            Defaults to 'activitynet'.

    Returns:
        dict: ``tious`` [N_t] (as evaluated), ``class_ids`` [N_c] (classes with GT, sorted),
        ``ap`` [N_t, N_c], ``mAP`` [N_t] and ``average_mAP`` (float); fractions in [0, 1].
    """
    if evaluator not in EVALUATORS:
        raise ValueError(f'evaluator must be one of {EVALUATORS}, got {evaluator!r}')
    tious = np.asarray(tious, dtype=np.float64).reshape(-1)
    if len(tious) == 0 or not np.all((tious > 0) & (tious <= 1)):
        raise ValueError(f'tious must be a non-empty list of thresholds in (0, 1], got '
                         f'{tious.tolist()}')
    upstream = evaluator == 'actionformer'
    if upstream:
        tious = actionformer_tious(tious)
    gt_by_class: Dict[int, Dict[str, np.ndarray]] = defaultdict(dict)
    for vid, g in gt.items():
        segs = np.asarray(g['segments'], dtype=np.float64).reshape(-1, 2)
        labels = np.asarray(g['labels'], dtype=np.int64).reshape(-1)
        if len(segs) != len(labels):
            raise ValueError(f'GT of video {vid!r}: {len(segs)} segments but {len(labels)} '
                             'labels')
        if tol is not None:
            segs, labels = clean_gt_segments(segs, labels, tol)
        for c in np.unique(labels):
            gt_by_class[int(c)][vid] = segs[labels == c]
    class_ids = sorted(gt_by_class)

    p_vid, p_seg, p_score, p_label = [], [], [], []
    for vid, p in preds.items():
        segs = np.asarray(p['segments'], dtype=np.float64).reshape(-1, 2)
        scores = np.asarray(p['scores'], dtype=np.float64).reshape(-1)
        labels = np.asarray(p['labels'], dtype=np.int64).reshape(-1)
        if not len(segs) == len(scores) == len(labels):
            raise ValueError(f'predictions of video {vid!r}: {len(segs)} segments, '
                             f'{len(scores)} scores and {len(labels)} labels differ in length')
        p_vid.append(np.full(len(segs), vid, dtype=object))
        p_seg.append(segs)
        p_score.append(scores)
        p_label.append(labels)
    p_vid = np.concatenate(p_vid) if p_vid else np.zeros(0, dtype=object)
    p_seg = np.concatenate(p_seg) if p_seg else np.zeros((0, 2))
    p_score = np.concatenate(p_score) if p_score else np.zeros(0)
    p_label = np.concatenate(p_label) if p_label else np.zeros(0, dtype=np.int64)

    if upstream:
        # DataFrame.replace({GT class: its rank}): GT classes become 0..N_c-1, any other
        # predicted id stays as it is and is scored as the class of that rank, if any
        cls = np.asarray(class_ids, dtype=np.int64)
        rank = np.minimum(np.searchsorted(cls, p_label), max(len(cls) - 1, 0))
        known = cls[rank] == p_label if len(cls) else np.zeros(len(p_label), dtype=bool)
        p_label = np.where(known, rank, p_label)
    ap = np.zeros((len(tious), len(class_ids)))
    for j, c in enumerate(class_ids):
        sel = p_label == (j if upstream else c)
        ap[:, j] = _class_ap(gt_by_class[c], p_vid[sel], p_seg[sel], p_score[sel], tious,
                             stable=not upstream)
    mean_ap = ap.mean(axis=1) if class_ids else np.zeros(len(tious))
    return dict(tious=tious, class_ids=np.asarray(class_ids, dtype=np.int64), ap=ap,
                mAP=mean_ap, average_mAP=float(mean_ap.mean()))


def tiou_key(t: float) -> str:
    """Metric name of one threshold, e.g. ``mAP@0.30``."""
    return f'mAP@{t:.2f}'


def plot_map_vs_tiou(tious: Sequence[float], maps, path: str,
                     title: str = 'mAP vs tIoU') -> str:
    """Write a PNG line plot of mAP (%) against the tIoU threshold (matplotlib Agg backend).

    ``maps`` is one run's [N_t] mAP (fractions; its average goes in the title) or
    ``{name: [N_t] mAP}`` of several runs, overlaid with their averages in the legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if isinstance(maps, Mapping):
        for name, run in maps.items():
            ax.plot(list(tious), [100 * m for m in run], marker='o',
                    label=f'{name} (avg {100 * float(np.mean(run)):.1f})')
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        ax.set_title(title)
    else:
        ax.plot(list(tious), [100 * m for m in maps], marker='o')
        ax.set_title(f'{title} (avg {100 * float(np.mean(maps)):.2f})')
    ax.set_xlabel('tIoU threshold')
    ax.set_ylabel('mAP (%)')
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


@METRICS.register_module()
class TADmAPMetric(BaseMetric):
    """ActivityNet-style temporal action detection mAP (ActionFormer ``ANETdetection``).

    GT comes from the annotation JSON (``ann_file`` + ``subset``); predictions from each data
    sample's ``pred_instances`` (``segments`` [K, 2] in seconds, ``scores`` [K], ``labels`` [K])
    keyed by the metainfo ``video_id``. GT videos without predictions count as misses.

    Returns ``mAP/avg`` (first, so ``save_best='auto'`` picks it) and one ``mAP@<tIoU>`` per
    threshold, in percent; a table is logged and, with ``plot_file``, a PNG of mAP vs tIoU is
    written.

    Args:
        ann_file (str): ActionFormer-style annotation JSON.
        subset (str | Sequence[str]): Subset(s) evaluated (lower-cased compare). Defaults to
            'test'.
        tious (Sequence[float]): Thresholds. Defaults to THUMOS14's (0.3, 0.4, 0.5, 0.6, 0.7);
            FineAction uses 0.5:0.05:0.95 (``FINEACTION_TIOUS``).
        tol (float, optional): GT clean-up tolerance (s); None disables. Defaults to 1e-3.
        evaluator (str): ``'activitynet'`` or ``'actionformer'``: the latter reproduces
            ActionFormer's ``ANETdetection`` exactly (its tie order, its label remapping of
            predicted classes without GT, its ``np.linspace`` thresholds; see the module
            docstring), for comparing with numbers published from it. Defaults to
            'activitynet'.
        class_agnostic (bool): Evaluate every GT and prediction as class 0 (proposal mAP).
            Defaults to False.
        per_class (bool): Also log the AP of each class averaged over thresholds. Defaults to
            False.
        plot_file (str, optional): PNG path; a relative path is placed next to the current
            log file (inside the run's work dir) when there is one, else under the cwd.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Metric name prefix. Defaults to None.
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 ann_file: str,
                 subset='test',
                 tious: Sequence[float] = THUMOS14_TIOUS,
                 tol: Optional[float] = 1e-3,
                 evaluator: str = 'activitynet',
                 class_agnostic: bool = False,
                 per_class: bool = False,
                 plot_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        subsets = [subset] if isinstance(subset, str) else list(subset)
        tious = [float(t) for t in tious]
        errors = []
        if not subsets or not all(isinstance(s, str) and s for s in subsets):
            errors.append(f'subset must be a non-empty string or list of strings, got {subset!r}')
        if not tious or not all(0 < t <= 1 for t in tious):
            errors.append(f'tious must be a non-empty list of thresholds in (0, 1], got {tious}')
        if tol is not None and tol < 0:
            errors.append(f'tol must be >= 0 or None, got {tol}')
        if evaluator not in EVALUATORS:
            errors.append(f'evaluator must be one of {EVALUATORS}, got {evaluator!r}')
        if errors:
            raise ValueError('TADmAPMetric: ' + '; '.join(errors))
        self.ann_file = ann_file
        self.subsets = [s.lower() for s in subsets]
        self.tious = tious
        self.tol = tol
        self.evaluator = evaluator
        self.class_agnostic = class_agnostic
        self.per_class = per_class
        self.plot_file = plot_file

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Store each sample's ``video_id`` and ``pred_instances`` as numpy arrays."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pred = sample.get('pred_instances')
            if pred is None or 'video_id' not in sample:
                raise KeyError('TADmAPMetric: every data sample needs metainfo "video_id" and '
                               f'"pred_instances"; got keys {sorted(sample)}')
            if isinstance(pred, BaseDataElement):
                pred = pred.to_dict()
            arrays = {}
            for k in ('segments', 'scores', 'labels'):
                if k not in pred:
                    raise KeyError(f'TADmAPMetric: pred_instances of video '
                                   f'{sample["video_id"]!r} lack "{k}"')
                v = pred[k]
                arrays[k] = v.detach().cpu().numpy() if hasattr(v, 'detach') else np.asarray(v)
            self.results.append((str(sample['video_id']), arrays))

    def load_gt(self) -> Tuple[Dict[str, dict], Tuple[str, ...]]:
        """GT of the evaluated subsets: video id -> dict(segments, labels), and class names."""
        database = load_tad_database(self.ann_file)
        classes = class_names_from_database(database, self.ann_file)
        gt = {}
        for vid, entry in database.items():
            if entry['subset'].lower() not in self.subsets:
                continue
            anns = entry.get('annotations', [])
            gt[vid] = dict(
                segments=np.array([a['segment'] for a in anns], dtype=np.float64).reshape(-1, 2),
                labels=np.array([0 if self.class_agnostic else a['label_id'] for a in anns],
                                dtype=np.int64))
        if not gt:
            raise ValueError(f'TADmAPMetric: no video of subset {self.subsets} in '
                             f'{self.ann_file}')
        return gt, (('action', ) if self.class_agnostic else classes)

    def compute_metrics(self, results: List[Tuple[str, dict]]) -> Dict[str, float]:
        gt, classes = self.load_gt()
        # Several samples of one video (e.g. sliding windows) are pooled.
        pooled: Dict[str, List[dict]] = defaultdict(list)
        for vid, p in results:
            pooled[vid].append(p)
        preds = {}
        for vid, ps in pooled.items():
            segs = np.concatenate([np.asarray(p['segments']).reshape(-1, 2) for p in ps])
            scores = np.concatenate([np.asarray(p['scores']).reshape(-1) for p in ps])
            labels = np.concatenate([np.asarray(p['labels']).reshape(-1) for p in ps])
            if self.class_agnostic:
                labels = np.zeros_like(labels)
            preds[vid] = dict(segments=segs, scores=scores, labels=labels)
        logger = MMLogger.get_current_instance()
        unknown = sorted(set(preds) - set(gt))
        if unknown:
            print_log(f'TADmAPMetric: {len(unknown)} predicted videos are not in subset '
                      f'{self.subsets} of {self.ann_file} (their predictions are false '
                      f'positives), e.g. {unknown[:3]}', logger=logger, level=30)
        unpredicted = len(set(gt) - set(preds))
        res = compute_tad_map(gt, preds, self.tious, self.tol, self.evaluator)
        self._log_table(res, classes, len(preds), unpredicted, logger)
        if self.plot_file:
            path = self.plot_file
            if not osp.isabs(path) and getattr(logger, 'log_file', None):
                path = osp.join(osp.dirname(logger.log_file), path)
            plot_map_vs_tiou(res['tious'], res['mAP'], path)
            print_log(f'TADmAPMetric: mAP vs tIoU plot written to {path}', logger=logger)
        out = OrderedDict()
        out['mAP/avg'] = 100 * res['average_mAP']
        for t, m in zip(res['tious'], res['mAP']):
            out[tiou_key(t)] = 100 * float(m)
        return out

    def _log_table(self, res: dict, classes: Sequence[str], num_pred_videos: int,
                   unpredicted: int, logger) -> None:
        lines = [f'TAD detection mAP ({self.evaluator} evaluator) on {self.ann_file} '
                 f'[{",".join(self.subsets)}]: '
                 f'{len(res["class_ids"])} classes with GT, predictions for {num_pred_videos} '
                 f'videos ({unpredicted} GT videos without predictions)',
                 '| tIoU | mAP (%) |', '|------|---------|']
        lines += [f'| {t:.2f} | {100 * m:7.2f} |' for t, m in zip(res['tious'], res['mAP'])]
        lines.append(f'| avg  | {100 * res["average_mAP"]:7.2f} |')
        if self.per_class and len(res['class_ids']):
            lines += ['| class | AP (%) avg over tIoU |', '|-------|------|']
            for j, c in enumerate(res['class_ids']):
                name = classes[c] if c < len(classes) else f'class_{c}'
                lines.append(f'| {name} | {100 * res["ap"][:, j].mean():.2f} |')
        print_log('\n'.join(lines), logger=logger)


__all__ = ['TADmAPMetric', 'compute_tad_map', 'clean_gt_segments', 'segment_tiou',
           'interpolated_ap', 'plot_map_vs_tiou', 'actionformer_tious', 'THUMOS14_TIOUS',
           'FINEACTION_TIOUS', 'EVALUATORS']
