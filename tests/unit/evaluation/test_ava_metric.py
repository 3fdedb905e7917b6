"""AVAFrameMAPMetric against hand-computed fixtures (official ActivityNet AVA semantics)."""
import math

import numpy as np
import pytest
import torch

from vmae2_mm.evaluation.ava_metric import (AVAFormatError, AVAFrameMAPMetric, group_rows,
                                            read_ava_csv, read_exclusions, read_labelmap,
                                            tp_fp_single_class, voc_average_precision)

VID = 'aaaaaaaaaaa'
A = [0.1, 0.1, 0.5, 0.5]    # x1, y1, x2, y2 (normalised)
B = [0.5, 0.5, 0.9, 0.9]
C = [0.2, 0.2, 0.6, 0.6]
D = [0.1, 0.1, 0.3, 0.3]
E = [0.1, 0.1, 0.5, 0.6]    # IoU(A, E) = 0.8
A2 = [0.1, 0.1, 0.5, 0.52]  # IoU(A2, A) = 0.952 > IoU(A2, E) = 0.84
C_LOW = [0.2, 0.2, 0.6, 0.35]  # IoU with C = 0.375 < 0.5

LABELMAP = '''item {
  name: "fall down"
  id: 5
}
item {
  name: "walk"
  id: 14
}
item {
  name: "carry/hold (an object)"
  id: 17
}
item {
  name: "open (e.g., a window, a car door)"
  id: 30
}
item {
  name: "give/serve (an object) to (a person)"
  id: 64
}
item {
  name: "watch (a person)"
  id: 80
}
'''

# GT: frames 902/903 annotated, 904 annotated but excluded, 905 not annotated at all;
# class 99 is not in the label map and must be ignored.
GT_ROWS = [
    (902, A, 5, 0), (902, A, 17, 0), (902, A, 99, 0), (902, E, 17, 2),
    (902, B, 5, 1), (902, B, 80, 1),
    (903, C, 5, 0), (903, C, 14, 0), (903, C, 64, 0),
    (904, D, 5, 0),
]

# Detections as (timestamp, box, {class_id: score}); one proposal box per entry.
DETS = [
    (902, A, {5: 0.9, 80: 0.95, 17: 0.7, 30: 0.5, 99: 0.99}),
    (902, A2, {17: 0.6}),
    (902, B, {5: 0.3, 80: 0.1}),
    (903, C_LOW, {5: 0.8}),
    (903, C, {5: 0.2, 64: 0.4}),
    (904, D, {5: 0.97}),   # excluded keyframe: ignored
    (905, A, {5: 0.85}),   # keyframe without GT: a false positive (official)
]

# Hand computation (see test docstring).
EXPECTED = {5: 11 / 15, 14: 0.0, 17: 0.5, 30: math.nan, 64: 1.0, 80: 0.5}


def write_fixture(tmp_path):
    ann = tmp_path / 'ava_val_v2.2.csv'
    ann.write_text(''.join(f'{VID},{ts},{",".join(map(str, box))},{cid},{pid}\n'
                           for ts, box, cid, pid in GT_ROWS))
    excl = tmp_path / 'ava_val_excluded_timestamps_v2.2.csv'
    excl.write_text(f'{VID},0904\n')
    lm = tmp_path / 'labelmap.pbtxt'
    lm.write_text(LABELMAP)
    return str(ann), str(excl), str(lm)


def data_samples(dets, num_classes=100):
    by_ts = {}
    for ts, box, scores in dets:
        by_ts.setdefault(ts, []).append((box, scores))
    samples = []
    for ts, entries in by_ts.items():
        score_mat = torch.zeros(len(entries), num_classes, dtype=torch.float64)
        for i, (_, scores) in enumerate(entries):
            for cid, s in scores.items():
                score_mat[i, cid] = s
        samples.append(dict(video_id=VID, timestamp=ts, pred_instances=dict(
            bboxes=torch.tensor([box for box, _ in entries], dtype=torch.float64),
            scores=score_mat)))
    return samples


def run_metric(tmp_path, dets=DETS, **kwargs):
    ann, excl, lm = write_fixture(tmp_path)
    metric = AVAFrameMAPMetric(ann_file=ann, label_file=lm, exclude_file=excl,
                               num_classes=100, **kwargs)
    metric.process(None, data_samples(dets))
    return metric.compute_metrics(metric.results)


def test_hand_computed_fixture(tmp_path):
    """Class 5: ranked .9 TP, .85 FP (frame without GT), .8 FP (IoU .375), .3 TP, .2 TP with
    3 GT (the excluded frame's GT and .97 detection are ignored): precision 1, 1/2, 1/3, 1/2,
    3/5 at recall 1/3, 1/3, 1/3, 2/3, 1 -> envelope 1, .6, .6 -> AP = 1/3 + .2 + .2 = 11/15.
    Class 14: GT, no detection -> 0 (counted). Class 17: the .6 detection's max-IoU GT is the
    already matched A (no fall-back to E, IoU .84) -> TP, FP over 2 GT -> .5. Class 30:
    detections without GT -> NaN, not in the mean. Class 64: 1. Class 80: FP .95 then TP .1
    -> .5. Class 99 is outside the label map."""
    m = run_metric(tmp_path)
    for cid, ap in EXPECTED.items():
        key = next(k for k in m if k.startswith(f'AP/{cid:02d} '))
        if math.isnan(ap):
            assert math.isnan(m[key])
        else:
            assert m[key] == pytest.approx(ap, abs=1e-12), key
    assert m['overall'] == pytest.approx(41 / 75, abs=1e-12)
    assert m['person_movement'] == pytest.approx(11 / 30, abs=1e-12)
    assert m['object_manipulation'] == pytest.approx(0.5, abs=1e-12)
    assert m['person_interaction'] == pytest.approx(0.75, abs=1e-12)
    assert list(m)[0] == 'overall'
    assert not any('99' in k for k in m)


def test_mmaction_semantics_differ_on_this_fixture(tmp_path):
    """The documented differences are real: without the FP on the GT-less frame class 5 would
    be 5/6, and omitting the detection-less class 14 would change the mean."""
    m = run_metric(tmp_path, dets=[d for d in DETS if d[0] != 905])
    assert m['AP/05 fall down'] == pytest.approx(5 / 6, abs=1e-12)
    assert m['AP/14 walk'] == 0.0


def test_excluded_timestamp_removes_gt(tmp_path):
    """Drop the exclusion file: frame 904's GT and its .97 detection (TP) now count."""
    ann, _, lm = write_fixture(tmp_path)
    metric = AVAFrameMAPMetric(ann_file=ann, label_file=lm, num_classes=100)
    metric.process(None, data_samples(DETS))
    m = metric.compute_metrics(metric.results)
    # ranked .97 TP, .9 TP, .85 FP, .8 FP, .3 TP, .2 TP over 4 GT:
    # envelope: 1 at r=.25,.5; 4/6 at .75, 1 -> AP = .5 + .25*(4/6)*2
    assert m['AP/05 fall down'] == pytest.approx(0.5 + 0.5 * 4 / 6, abs=1e-12)


def test_capacity_50_detections_per_frame(tmp_path):
    """51 detections on one keyframe: the lowest-scoring one (the only TP) is dropped by the
    official top-50 capacity -> AP 0; unlimited capacity -> TP at rank 51 -> AP 1/51."""
    far = [0.8, 0.8, 0.9, 0.9]
    dets = [(903, far, {14: 0.5 + i * 0.001}) for i in range(50)] + [(903, C, {14: 0.1})]
    m = run_metric(tmp_path, dets=dets)
    assert m['AP/14 walk'] == 0.0
    m = run_metric(tmp_path, dets=dets, max_dets_per_frame=0)
    assert m['AP/14 walk'] == pytest.approx(1 / 51, abs=1e-12)


def test_degenerate_detection_dropped(tmp_path):
    bad = [0.6, 0.2, 0.2, 0.6]  # x2 < x1
    m = run_metric(tmp_path, dets=[(903, bad, {64: 0.9}), (903, C, {64: 0.4})])
    assert m['AP/64 give/serve (an object) to (a person)'] == 1.0


def test_action_thr_and_custom_classes(tmp_path):
    """Scores <= action_thr are not detections; with custom_classes score column j is class
    custom_classes[j - 1]."""
    m = run_metric(tmp_path, dets=[(903, C, {64: 0.002})])
    assert m['AP/64 give/serve (an object) to (a person)'] == 0.0
    ann, excl, lm = write_fixture(tmp_path)
    metric = AVAFrameMAPMetric(ann_file=ann, label_file=lm, exclude_file=excl, num_classes=3,
                               custom_classes=[14, 64])
    metric.process(None, [dict(video_id=VID, timestamp=903, pred_instances=dict(
        bboxes=torch.tensor([C]), scores=torch.tensor([[0.0, 0.7, 0.0]])))])
    m = metric.compute_metrics(metric.results)
    assert m['AP/14 walk'] == 1.0 and m['AP/64 give/serve (an object) to (a person)'] == 0.0
    assert set(k for k in m if k.startswith('AP/')) == {
        'AP/14 walk', 'AP/64 give/serve (an object) to (a person)'}


def test_out_csv_roundtrip(tmp_path):
    out = tmp_path / 'sub' / 'dets.csv'
    run_metric(tmp_path, out_csv=str(out))
    lines = out.read_text().splitlines()
    assert lines[0] == f'{VID},0902,0.100000,0.100000,0.500000,0.500000,5,0.900000'
    boxes, labels, scores = read_ava_csv(str(out), {5}, capacity=50)
    assert list(boxes) == [f'{VID},0902', f'{VID},0903', f'{VID},0904', f'{VID},0905']
    assert labels[f'{VID},0903'] == [5, 5] and scores[f'{VID},0903'] == [0.8, 0.2]


def test_single_class_rules():
    gts = np.array([[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.6, 0.5]])
    dets = np.array([[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.52, 0.5]])
    assert tp_fp_single_class(dets, gts).tolist() == [True, False]  # no fall-back
    assert tp_fp_single_class(dets, np.zeros((0, 4))).tolist() == [False, False]
    unit = np.array([[0.0, 0.0, 1.0, 1.0]])
    assert tp_fp_single_class(unit, np.array([[0.0, 0.0, 1.0, 0.5]])).tolist() == [True]  # .5
    assert tp_fp_single_class(unit, np.array([[0.0, 0.0, 1.0, 0.49]])).tolist() == [False]
    assert voc_average_precision(np.zeros(0), np.zeros(0, bool), 3) == 0.0
    assert math.isnan(voc_average_precision(np.array([0.5]), np.array([False]), 0))
    # ranked TP, FP, TP over 2 GT: 1 at .5, 2/3 at 1 -> .5 + .5 * 2/3
    assert voc_average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]),
                                 2) == pytest.approx(0.5 + 1 / 3, abs=1e-12)


def test_group_rows_official_heap_order():
    rows = [('v', 1, [0, 0, 1, 1], 3, 0.2), ('v', 1, [0, 0, 1, 1], 2, 0.9),
            ('v', 1, [0, 0, 1, 1], 7, 0.5), ('v', 2, [0, 0, 1, 1], 2, 0.1)]
    boxes, labels, scores = group_rows(rows, {2, 3}, capacity=1)
    assert labels == {'v,0001': [2], 'v,0002': [2]} and scores['v,0001'] == [0.9]
    assert boxes['v,0001'] == [[0, 0, 1, 1]]


def test_labelmap_formats_and_errors(tmp_path):
    lm80 = tmp_path / 'a.pbtxt'
    lm80.write_text('label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n'
                    '  label_type: PERSON_MOVEMENT\n}\nlabel { name: "crawl" label_id: 2 }\n')
    cats, ids = read_labelmap(str(lm80))
    assert cats == [dict(id=1, name='bend/bow (at the waist)'), dict(id=2, name='crawl')]
    assert ids == {1, 2}
    dup = tmp_path / 'dup.pbtxt'
    dup.write_text('item { name: "a" id: 3 }\nitem { name: "b" id: 3 }\n')
    with pytest.raises(AVAFormatError, match='dup.pbtxt: duplicate class id 3'):
        read_labelmap(str(dup))
    empty = tmp_path / 'empty.pbtxt'
    empty.write_text('nothing here\n')
    with pytest.raises(AVAFormatError, match='empty.pbtxt: no "name"/"id" entries'):
        read_labelmap(str(empty))


def test_bad_csv_rows_name_file_and_line(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text(f'{VID},0902,0.1,0.1,0.5,0.5,5,0\n{VID},0903,0.1,0.1,0.5\n')
    with pytest.raises(AVAFormatError, match=r'bad.csv:2: expected 7 or 8 columns'):
        read_ava_csv(str(bad))
    bad.write_text(f'{VID},09x2,0.1,0.1,0.5,0.5,5,0\n')
    with pytest.raises(AVAFormatError, match=r"bad.csv:1: expected an integer, got '09x2'"):
        read_ava_csv(str(bad))
    ex = tmp_path / 'ex.csv'
    ex.write_text(f'{VID},0902,3\n')
    with pytest.raises(AVAFormatError, match='ex.csv:1: expected 2 columns'):
        read_exclusions(str(ex))


def test_constructor_validation(tmp_path):
    ann, excl, lm = write_fixture(tmp_path)
    with pytest.raises(FileNotFoundError, match='ann_file'):
        AVAFrameMAPMetric(ann_file=str(tmp_path / 'nope.csv'), label_file=lm)
    with pytest.raises(ValueError, match='custom_classes has 1 ids'):
        AVAFrameMAPMetric(ann_file=ann, label_file=lm, num_classes=3, custom_classes=[5])
    with pytest.raises(ValueError, match=r'custom_classes \[7\] are not in the label map'):
        AVAFrameMAPMetric(ann_file=ann, label_file=lm, num_classes=2, custom_classes=[7])
    metric = AVAFrameMAPMetric(ann_file=ann, label_file=lm, num_classes=81)
    with pytest.raises(ValueError, match=r'pred scores must be \[N, num_classes=81\]'):
        metric.process(None, data_samples(DETS, num_classes=100))


def test_matches_mmaction_where_semantics_agree(tmp_path):
    """Random data without the cases where mmaction2 differs (every class with GT detected,
    no detections on GT-less or excluded frames, <= 50 per frame): identical APs."""
    from mmaction.evaluation.functional import ava_eval
    rng = np.random.default_rng(0)
    ann, _, lm = tmp_path / 'gt.csv', None, tmp_path / 'lm.pbtxt'
    lm.write_text(''.join(f'item {{\n  name: "c{c}"\n  id: {c}\n}}\n' for c in (1, 20, 70)))
    gt_lines, samples = [], []
    for ts in range(902, 922):
        boxes = []
        for pid in range(3):
            x, y = rng.uniform(0, 0.5, 2)
            box = [round(x, 3), round(y, 3), round(x + 0.4, 3), round(y + 0.45, 3)]
            boxes.append(box)
            for c in (1, 20, 70):
                if rng.random() < 0.5 or (ts == 902 and pid == 0):
                    gt_lines.append(f'{VID},{ts},{",".join(map(str, box))},{c},{pid}\n')
        jitter = np.clip(np.array(boxes) + rng.normal(0, 0.05, (3, 4)), 0, 1)
        scores = torch.zeros(3, 81, dtype=torch.float64)
        scores[:, [1, 20, 70]] = torch.from_numpy(np.round(rng.uniform(0.01, 1, (3, 3)), 4))
        samples.append(dict(video_id=VID, timestamp=ts, pred_instances=dict(
            bboxes=torch.from_numpy(np.round(jitter, 4)), scores=scores)))
    ann.write_text(''.join(gt_lines))
    metric = AVAFrameMAPMetric(ann_file=str(ann), label_file=str(lm))
    metric.process(None, samples)
    ours = metric.compute_metrics(metric.results)
    det_csv = tmp_path / 'det.csv'
    with open(det_csv, 'w') as f:
        for row in metric.detection_rows(metric.results):
            vid, ts, box, cid, s = row
            f.write(f'{vid},{ts},{",".join(f"{v:.4f}" for v in box)},{cid},{s:.4f}\n')
    theirs = ava_eval(str(det_csv), 'mAP', str(lm), str(ann), None, verbose=False)
    assert ours['overall'] == pytest.approx(theirs['overall'], abs=1e-12)
    assert ours['person_movement'] == pytest.approx(theirs['person_movement'], abs=1e-12)
    assert 0.2 < ours['overall'] < 0.95
