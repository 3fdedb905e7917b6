import json

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.structures import InstanceData

import vmae2_mm  # noqa: F401
from vmae2_mm.evaluation.tad_metric import (TADmAPMetric, clean_gt_segments, compute_tad_map,
                                            interpolated_ap)


def P(rows):
    """rows of (start, end, score, label) -> prediction dict."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return dict(segments=a[:, :2], scores=a[:, 2], labels=a[:, 3].astype(int))


# Hand-checked fixture: three classes with GT, one never predicted, one predicted label unknown.
GT = {
    'v1': dict(segments=[[0, 10], [20, 30], [40, 50], [80, 90]], labels=[0, 0, 1, 2]),
    'v2': dict(segments=[[0, 4], [10, 14]], labels=[1, 1]),
}
PREDS = {
    'v1': P([(0, 10, .90, 0),     # class 0: tIoU 1 with [0, 10] -> TP
             (21, 30, .80, 0),    # class 0: tIoU 9/10 with [20, 30] -> TP@.5,.6
             (0, 9, .70, 0),      # class 0: best GT [0, 10] already taken, next tIoU 0 -> FP
             (50, 60, .60, 0),    # class 0: no overlap -> FP
             (60, 70, .85, 1),    # class 1: no overlap -> FP
             (40, 49, .75, 1),    # class 1: tIoU 9/10 with [40, 50] -> TP@.5,.6
             (80, 90, .99, 7)]),  # label 7 has no GT: ignored
    'v2': P([(0, 4, .95, 1),      # class 1: tIoU 1 -> TP
             (10, 12, .65, 1)]),  # class 1: tIoU 2/4 = 0.5 with [10, 14] -> TP@.5 only
}
# class 0 (npos 2), ranks .9 .8 .7 .6:
#   @.5/.6: TP TP FP FP -> precision 1 1 2/3 1/2, recall 1/2 1 1 1        -> AP = 1
#   @.95:   TP FP FP FP -> recall stays 1/2 at precision 1                 -> AP = 1/2
# class 1 (npos 3), ranks .95 .85 .75 .65:
#   @.5:  TP FP TP TP -> precision 1 1/2 2/3 3/4, recall 1/3 1/3 2/3 1
#         envelope 1 .75 .75 .75 -> AP = 1/3 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6
#   @.6:  TP FP TP FP -> recall 1/3 1/3 2/3 2/3 -> AP = 1/3 + 1/3 * 2/3 = 5/9
#   @.95: TP FP FP FP -> AP = 1/3
# class 2: GT but no prediction -> AP 0
EXPECTED_AP = np.array([[1, 5 / 6, 0], [1, 5 / 9, 0], [1 / 2, 1 / 3, 0]])


def test_hand_checked_fixture():
    res = compute_tad_map(GT, PREDS, tious=[0.5, 0.6, 0.95])
    assert res['class_ids'].tolist() == [0, 1, 2]
    np.testing.assert_allclose(res['ap'], EXPECTED_AP, rtol=0, atol=1e-12)
    # mAP = mean over the 3 GT classes: 11/18, 14/27, 5/18; average = 76/162
    np.testing.assert_allclose(res['mAP'], [11 / 18, 14 / 27, 5 / 18], atol=1e-12)
    assert res['average_mAP'] == pytest.approx(76 / 162, abs=1e-12)


def test_duplicate_and_too_short_gt_are_dropped():
    noisy = {k: dict(v) for k, v in GT.items()}
    noisy['v1'] = dict(
        segments=GT['v1']['segments'] + [[0.0005, 10.0009],   # duplicate of [0, 10] (tol 1e-3)
                                          [5.0, 5.0009],      # shorter than 1e-3 s
                                          [40.0, 50.0]],      # same times, other class: kept
        labels=GT['v1']['labels'] + [0, 0, 2])
    segs, labels = clean_gt_segments(noisy['v1']['segments'], noisy['v1']['labels'])
    np.testing.assert_array_equal(segs, [[0, 10], [20, 30], [40, 50], [80, 90], [40, 50]])
    assert labels.tolist() == [0, 0, 1, 2, 2]
    res = compute_tad_map(noisy, PREDS, tious=[0.5, 0.6, 0.95])
    # class 2 now has 2 GT in v1, still no prediction: the other APs are unchanged
    np.testing.assert_allclose(res['ap'], EXPECTED_AP, atol=1e-12)
    # without the clean-up class 0 has 4 GT (+ duplicate + short one) and the FP at .7 ([0, 9],
    # tIoU 8.9995 / 10.0009 = 0.89986 with the duplicate) becomes a TP at 0.5:
    # TP TP TP FP, recall 1/4 2/4 3/4 at precision 1 -> AP 3/4; at 0.95 only the first -> 1/4
    raw = compute_tad_map(noisy, PREDS, tious=[0.5, 0.95], tol=None)
    assert raw['ap'][0, 0] == pytest.approx(3 / 4)
    assert raw['ap'][1, 0] == pytest.approx(1 / 4)


def test_greedy_match_falls_back_to_next_best_gt():
    gt = {'v': dict(segments=[[0, 10], [6, 16]], labels=[0, 0])}
    # r1 takes [0, 10]; r2 [2, 12] has tIoU 8/12 with [0, 10] (taken) and 6/14 = 0.4286 with
    # [6, 16]: a TP at 0.4, an FP at 0.5 -> AP(0.4) = 1, AP(0.5) = 1/2
    preds = {'v': P([(0, 10, .9, 0), (2, 12, .8, 0)])}
    res = compute_tad_map(gt, preds, tious=[0.4, 0.5])
    np.testing.assert_allclose(res['ap'][:, 0], [1.0, 0.5])


def test_tiou_threshold_is_inclusive_and_unknown_videos_are_fp():
    gt = {'v': dict(segments=[[0, 4]], labels=[0])}
    preds = {'v': P([(2, 4, .5, 0)]), 'other': P([(0, 4, .9, 0)])}
    # the 'other' FP ranks first: precision 0 then 1/2 at recall 1 -> AP 1/2; tIoU exactly 0.5
    res = compute_tad_map(gt, preds, tious=[0.5, 0.51])
    np.testing.assert_allclose(res['ap'][:, 0], [0.5, 0.0])


def test_score_ties_keep_input_order():
    gt = {'v': dict(segments=[[0, 4]], labels=[0])}
    first_fp = {'v': P([(10, 14, .5, 0), (0, 4, .5, 0)])}
    first_tp = {'v': P([(0, 4, .5, 0), (10, 14, .5, 0)])}
    assert compute_tad_map(gt, first_fp, [0.5])['ap'][0, 0] == pytest.approx(0.5)
    assert compute_tad_map(gt, first_tp, [0.5])['ap'][0, 0] == pytest.approx(1.0)


def test_interpolated_ap_by_hand():
    # precision 1, 0.5, 2/3 at recall 0.5, 0.5, 1 -> envelope 1, 2/3, 2/3 -> 0.5 + 0.5 * 2/3
    assert interpolated_ap(np.array([1, .5, 2 / 3]), np.array([.5, .5, 1.])) == pytest.approx(
        0.5 + 1 / 3)


def test_matches_mmaction_reference_on_random_data():
    from mmaction.evaluation.functional.eval_detection import \
        compute_average_precision_detection
    rng = np.random.default_rng(0)
    gt, preds = {}, {}
    for v in range(20):
        m = int(rng.integers(1, 6))
        s = rng.uniform(0, 90, m)
        segs = np.stack([s, s + rng.uniform(1, 10, m)], 1)
        gt[f'v{v}'] = dict(segments=segs, labels=rng.integers(0, 3, m))
        idx = rng.integers(0, m, 30)
        ps = np.sort(segs[idx] + rng.normal(0, 1.0, (30, 2)), axis=1)
        lab = np.where(rng.random(30) < .8, gt[f'v{v}']['labels'][idx], rng.integers(0, 3, 30))
        preds[f'v{v}'] = dict(segments=ps, scores=rng.random(30), labels=lab)
    tious = np.linspace(0.3, 0.7, 5)
    res = compute_tad_map(gt, preds, tious)
    for c in range(3):
        g = [{'video-id': v, 't-start': a, 't-end': b} for v, d in gt.items()
             for (a, b), lab in zip(d['segments'], d['labels']) if lab == c]
        p = [{'video-id': v, 't-start': a, 't-end': b, 'score': sc} for v, d in preds.items()
             for (a, b), sc, lab in zip(d['segments'], d['scores'], d['labels']) if lab == c]
        np.testing.assert_allclose(res['ap'][:, c], compute_average_precision_detection(
            g, p, tious), rtol=0, atol=1e-12)
    assert 0.2 < res['average_mAP'] < 0.9


def _write_gt_json(path):
    db = {vid: dict(subset='Test', duration=100.0, fps=30.0, annotations=[
        dict(segment=list(map(float, s)), label=f'c{lab}', label_id=int(lab))
        for s, lab in zip(d['segments'], d['labels'])]) for vid, d in GT.items()}
    db['train_vid'] = dict(subset='Validation', duration=50.0, fps=30.0, annotations=[
        dict(segment=[1.0, 2.0], label='c0', label_id=0)])
    path.write_text(json.dumps(dict(database=db)))


def _sample(vid, pred):
    s = ActionDataSample()
    s.set_metainfo(dict(video_id=vid))
    s.pred_instances = InstanceData(segments=torch.tensor(pred['segments'], dtype=torch.float32),
                                    scores=torch.tensor(pred['scores'], dtype=torch.float32),
                                    labels=torch.tensor(pred['labels']))
    return s


def test_metric_reads_gt_json_and_samples(tmp_path):
    ann = tmp_path / 'gt.json'
    _write_gt_json(ann)
    plot = tmp_path / 'plots' / 'map_vs_tiou.png'
    metric = TADmAPMetric(ann_file=str(ann), subset='TEST', tious=[0.5, 0.6, 0.95],
                          plot_file=str(plot), per_class=True)
    # v2's predictions arrive in two samples (pooled), dicts as the Evaluator passes them
    v2 = PREDS['v2']
    halves = [{k: v[:1] for k, v in v2.items()}, {k: v[1:] for k, v in v2.items()}]
    metric.process(None, [_sample('v1', PREDS['v1']).to_dict()])
    metric.process(None, [_sample('v2', halves[0]), _sample('v2', halves[1]).to_dict()])
    out = metric.evaluate(3)
    assert list(out) == ['mAP/avg', 'mAP@0.50', 'mAP@0.60', 'mAP@0.95']
    assert out['mAP@0.50'] == pytest.approx(100 * 11 / 18, abs=1e-4)
    assert out['mAP@0.60'] == pytest.approx(100 * 14 / 27, abs=1e-4)
    assert out['mAP@0.95'] == pytest.approx(100 * 5 / 18, abs=1e-4)
    assert out['mAP/avg'] == pytest.approx(100 * 76 / 162, abs=1e-4)
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_metric_class_agnostic_and_validation(tmp_path):
    ann = tmp_path / 'gt.json'
    _write_gt_json(ann)
    metric = TADmAPMetric(ann_file=str(ann), subset='test', tious=[0.5], class_agnostic=True)
    # one class: GT [0,10] [20,30] [40,50] [80,90] in v1; the only prediction hits [80, 90]
    metric.process(None, [_sample('v1', P([(80, 90, .9, 5)]))])
    out = metric.evaluate(1)
    # npos = 6 (4 in v1, 2 in v2), one TP at precision 1 -> AP = 1/6
    assert out['mAP@0.50'] == pytest.approx(100 / 6)
    with pytest.raises(ValueError, match='tious'):
        TADmAPMetric(ann_file=str(ann), tious=[0.0, 0.5])
    metric = TADmAPMetric(ann_file=str(ann), subset='training')
    metric.process(None, [_sample('v1', P([(80, 90, .9, 5)]))])
    with pytest.raises(ValueError, match='no video of subset'):
        metric.evaluate(1)
    with pytest.raises(KeyError, match='pred_instances'):
        metric.process(None, [dict(video_id='v1')])


# --- evaluator='actionformer': ActionFormer's ANETdetection exactly ---------------------------

def test_both_evaluators_agree_on_the_hand_checked_fixture():
    # no score ties, every predicted id either a GT class or above all of them (7): the two
    # evaluators differ nowhere; [0.5, 0.6, 0.95] is not evenly spaced, so kept as given
    res = compute_tad_map(GT, PREDS, tious=[0.5, 0.6, 0.95], evaluator='actionformer')
    assert res['tious'].tolist() == [0.5, 0.6, 0.95]
    np.testing.assert_allclose(res['ap'], EXPECTED_AP, rtol=0, atol=1e-12)


def test_actionformer_scores_a_label_without_gt_as_the_class_of_that_rank():
    gt = {'v': dict(segments=[[0, 10], [20, 30]], labels=[0, 2])}     # no GT of class 1
    preds = {'v': P([(0, 10, .9, 0),      # class 0: TP
                     (20, 30, .8, 1)])}   # label 1: no GT class 1
    # activitynet: label 1 is ignored -> class 2 has no prediction: AP 0; mAP (1 + 0) / 2
    res = compute_tad_map(gt, preds, tious=[0.5])
    np.testing.assert_allclose(res['ap'], [[1.0, 0.0]])
    assert res['average_mAP'] == pytest.approx(0.5)
    # actionformer: GT classes {0, 2} are replaced by their ranks {0: 0, 2: 1}; the predicted 1
    # is left as 1 by the same replace and so is scored as class 2 (rank 1): a TP there,
    # AP 1 for both classes -> mAP 1
    res = compute_tad_map(gt, preds, tious=[0.5], evaluator='actionformer')
    np.testing.assert_allclose(res['ap'], [[1.0, 1.0]])
    assert res['average_mAP'] == pytest.approx(1.0)


def test_actionformer_builds_thumos_thresholds_with_linspace():
    # tIoU of [0.3, 0.7] with [0, 1] is (0.7 - 0.3) / 1 = 0.39999999999999997 in float64
    gt = {'v': dict(segments=[[0, 1]], labels=[0])}
    preds = {'v': P([(0.3, 0.7, .9, 0)])}
    tiou = (0.7 - 0.3) / ((0.7 - 0.3) + 1.0 - (0.7 - 0.3))
    assert tiou < 0.4 and tiou == np.linspace(0.3, 0.7, 5)[1]
    # activitynet: literal 0.4 -> a miss there; TP only at 0.3 -> mAP [1, 0, 0, 0, 0]
    res = compute_tad_map(gt, preds)
    np.testing.assert_allclose(res['mAP'], [1, 0, 0, 0, 0])
    assert res['average_mAP'] == pytest.approx(0.2)
    # actionformer: np.linspace(0.3, 0.7, 5)[1] = 0.39999999999999997 -> TP at 0.3 and "0.4"
    res = compute_tad_map(gt, preds, evaluator='actionformer')
    assert res['tious'].tolist() == np.linspace(0.3, 0.7, 5).tolist()
    np.testing.assert_allclose(res['mAP'], [1, 1, 0, 0, 0])
    assert res['average_mAP'] == pytest.approx(0.4)


def test_actionformer_ranks_ties_with_reversed_argsort():
    gt = {'v': dict(segments=[[0, 4]], labels=[0])}
    preds = {'v': P([(10, 14, .5, 0), (0, 4, .5, 0)])}     # FP then TP, equal scores
    # activitynet: input order, FP first -> precision 0, 1/2 at recall 1 -> AP 1/2
    assert compute_tad_map(gt, preds, [0.5])['ap'][0, 0] == pytest.approx(0.5)
    # actionformer: the order of np.array([.5, .5]).argsort()[::-1]; TP first -> AP 1
    first = int(np.array([.5, .5]).argsort()[::-1][0])
    expected = 1.0 if first == 1 else 0.5
    res = compute_tad_map(gt, preds, [0.5], evaluator='actionformer')
    assert res['ap'][0, 0] == pytest.approx(expected)


def _anet_detection(gt, preds, tious):
    """ActionFormer's ANETdetection (remove_duplicate_annotations, activity_index + replace,
    compute_average_precision_detection, interpolated_prec_rec) transcribed loop by loop
    without pandas; returns ap [N_t, N_c]."""
    rows = []                                    # GT (video, start, end, label), cleaned
    for vid, g in gt.items():
        kept = []
        for (s, e), lab in zip(g['segments'], g['labels']):
            valid = (e - s) >= 1e-3
            for ps, pe, pl in kept:
                if abs(s - ps) <= 1e-3 and abs(e - pe) <= 1e-3 and lab == pl:
                    valid = False
                    break
            if valid:
                kept.append((s, e, lab))
        rows += [(vid, s, e, lab) for s, e, lab in kept]
    index = {c: i for i, c in enumerate(sorted({r[3] for r in rows}))}
    gt_rows = [(v, s, e, index[lab]) for v, s, e, lab in rows]
    pred_rows = [(vid, s, e, index.get(int(lab), int(lab)), sc) for vid, p in preds.items()
                 for (s, e), sc, lab in zip(p['segments'], p['scores'], p['labels'])]
    ap = np.zeros((len(tious), len(index)))
    for cidx in index.values():
        g = [r for r in gt_rows if r[3] == cidx]
        p = [r for r in pred_rows if r[3] == cidx]
        if not p:
            continue
        p = [p[i] for i in np.array([r[4] for r in p]).argsort()[::-1]]
        lock = -np.ones((len(tious), len(g)))
        tp, fp = np.zeros((len(tious), len(p))), np.zeros((len(tious), len(p)))
        for idx, (vid, s, e, _, _) in enumerate(p):
            this = [(j, gs, ge) for j, (gv, gs, ge, _) in enumerate(g) if gv == vid]
            if not this:
                fp[:, idx] = 1
                continue
            cand = np.array([[gs, ge] for _, gs, ge in this])
            inter = (np.minimum(e, cand[:, 1]) - np.maximum(s, cand[:, 0])).clip(0)
            tiou = inter / ((cand[:, 1] - cand[:, 0]) + (e - s) - inter)
            for t, thr in enumerate(tious):
                for jdx in tiou.argsort()[::-1]:
                    if tiou[jdx] < thr:
                        fp[t, idx] = 1
                        break
                    if lock[t, this[jdx][0]] >= 0:
                        continue
                    tp[t, idx] = 1
                    lock[t, this[jdx][0]] = idx
                    break
                if fp[t, idx] == 0 and tp[t, idx] == 0:
                    fp[t, idx] = 1
        tpc, fpc = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
        rec, prec = tpc / len(g), tpc / (tpc + fpc)
        for t in range(len(tious)):
            mprec = np.hstack([[0], prec[t], [0]])
            mrec = np.hstack([[0], rec[t], [1]])
            for i in range(len(mprec) - 1)[::-1]:
                mprec[i] = max(mprec[i], mprec[i + 1])
            i = np.where(mrec[1:] != mrec[:-1])[0] + 1
            ap[t, cidx] = np.sum((mrec[i] - mrec[i - 1]) * mprec[i])
    return ap


@pytest.mark.parametrize('seed', range(3))
def test_actionformer_evaluator_equals_the_transcription(seed):
    """Random videos with duplicate GT, score ties (scores on a 0.05 grid), a GT class left
    out (2) and predicted ids 2 and 5 without GT."""
    rng = np.random.default_rng(seed)
    gt, preds = {}, {}
    for v in range(12):
        m = int(rng.integers(1, 5))
        s = rng.uniform(0, 90, m)
        segs = np.stack([s, s + rng.uniform(1, 10, m)], 1)
        labels = rng.choice([0, 1, 3, 4], m)
        segs, labels = np.concatenate([segs, segs[:1]]), np.concatenate([labels, labels[:1]])
        gt[f'v{v}'] = dict(segments=segs, labels=labels)
        idx = rng.integers(0, len(segs), 25)
        ps = np.sort(segs[idx] + rng.normal(0, 1.0, (25, 2)), axis=1)
        lab = np.where(rng.random(25) < .7, labels[idx], rng.choice([0, 1, 2, 3, 4, 5], 25))
        preds[f'v{v}'] = dict(segments=ps, scores=np.round(rng.random(25) * 20) / 20,
                              labels=lab)
    tious = np.linspace(0.3, 0.7, 5)
    res = compute_tad_map(gt, preds, tious, evaluator='actionformer')
    np.testing.assert_array_equal(res['ap'], _anet_detection(gt, preds, tious))
    assert res['class_ids'].tolist() == [0, 1, 3, 4]
    ours = compute_tad_map(gt, preds, tious)
    assert not np.array_equal(ours['ap'], res['ap'])      # ids 2 and 5 land elsewhere there


def test_metric_actionformer_option(tmp_path):
    ann = tmp_path / 'gt.json'
    _write_gt_json(ann)
    metric = TADmAPMetric(ann_file=str(ann), tious=[0.5, 0.6, 0.95], evaluator='actionformer')
    metric.process(None, [_sample('v1', PREDS['v1']), _sample('v2', PREDS['v2'])])
    out = metric.evaluate(2)
    assert out['mAP/avg'] == pytest.approx(100 * 76 / 162, abs=1e-4)
    with pytest.raises(ValueError, match="evaluator must be one of .*'anet'"):
        TADmAPMetric(ann_file=str(ann), evaluator='anet')
