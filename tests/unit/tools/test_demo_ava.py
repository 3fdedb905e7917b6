"""tools/demo_ava.py on a generated mini-AVA video with a tiny (untrained) detector."""
import json
import os.path as osp

import decord
import numpy as np
import pytest
import torch

import vmae2_mm  # noqa: F401
from mmengine.config import Config
from mmengine.registry import init_default_scope
from vmae2_mm.testing.ava import generate_mini_ava
from tests.conftest import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
BASE = osp.join(REPO, 'configs', 'detection', 'videomaev2',
                'vit-small-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py')


def write_tiny_ava_config(path, label_file, height):
    """A tiny VideoMAE V2 AVA detector config (1 block, 32 wide, 8 frames x 4) on the paper
    recipe, testing on ``height``-high frames with the label map ``label_file``."""
    path.write_text(
        f'_base_ = [{BASE!r}]\n'
        'model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=32, depth=1, '
        'num_heads=2, mlp_ratio=2), num_frames=8, init_cfg=None),\n'
        '             roi_head=dict(bbox_head=dict(in_channels=32)))\n'
        'test_dataloader = dict(dataset=dict(pipeline=[\n'
        "    dict(type='SampleAVAFrames', clip_len=8, frame_interval=4, test_mode=True),\n"
        f"    dict(type='RawFrameDecode'), dict(type='Resize', scale=(-1, {height})),\n"
        "    dict(type='FormatShape', input_format='NCTHW', collapse=True),\n"
        "    dict(type='PackActionInputs')]))\n"
        f"test_evaluator = dict(label_file={label_file!r})\n")
    return path


def load_demo():
    return load_script('tools/demo_ava.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('demo')
    data = generate_mini_ava(str(tmp / 'data'), num_train_videos=1, num_val_videos=1,
                             seconds=5, height=64, width=96, videos=True, seed=0)
    cfg_path = write_tiny_ava_config(tmp / 'tiny.py', data['label_file'], height=64)
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    cfg = Config.fromfile(str(cfg_path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = tmp / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return data, str(cfg_path), str(ckpt), tmp


def test_demo_with_proposals_and_out_video(setup, capsys):
    data, cfg, ckpt, tmp = setup
    video = osp.join(data['root'], 'videos', 'valava00000.mp4')
    out_video = str(tmp / 'vis.mp4')
    res = load_demo().main([cfg, ckpt, video, '--proposals', data['val_proposals'],
                            '--video-start', '900', '--score-thr', '0', '--out-video',
                            out_video])
    printed = capsys.readouterr().out
    props = __import__('pickle').load(open(data['val_proposals'], 'rb'))
    assert sorted(res) == [902, 903]
    for ts in (902, 903):
        arr = props[f'valava00000,{ts:04d}']
        kept = arr[arr[:, 4] >= min(0.9, arr[:, 4].max())]  # as AVADataset thresholds
        assert len(res[ts]) == len(kept)
        np.testing.assert_allclose(np.array([b for b, _ in res[ts]]), kept[:, :4])
        # score-thr 0: every label-map class is listed for every person, best first
        for _, acts in res[ts]:
            assert sorted(c for c, _, _ in acts) == [7, 12, 14, 17]
            assert [s for _, _, s in acts] == sorted((s for _, _, s in acts), reverse=True)
    assert printed.count('t=902 person') == len(res[902]) and 'jump/leap' in printed
    reader = decord.VideoReader(out_video)
    assert len(reader) == 150 and reader[0].shape == (64, 96, 3)


def test_demo_with_boxes_json_and_threshold(setup, capsys):
    data, cfg, ckpt, tmp = setup
    boxes = tmp / 'boxes.json'
    boxes.write_text(json.dumps({'902': [[0.1, 0.1, 0.5, 0.9]], '950': [[0, 0, 1, 1]]}))
    video = osp.join(data['root'], 'videos', 'valava00000.mp4')
    res = load_demo().main([cfg, ckpt, video, '--boxes', str(boxes), '--video-start', '900',
                            '--score-thr', '1.0'])
    out = capsys.readouterr().out
    assert list(res) == [902] and res[902][0][1] == []  # nothing above 1.0
    assert 't=950: outside the video' in out and 't=902 person 0 box (0.100' in out


def test_demo_rejects_bad_boxes(setup, tmp_path):
    data, cfg, ckpt, _ = setup
    bad = tmp_path / 'b.csv'
    bad.write_text('902,0.1,0.1,1.5,0.9\n')
    with pytest.raises(ValueError, match=r'b.csv ts 902: boxes must be normalised'):
        load_demo().main([cfg, ckpt, 'v.mp4', '--boxes', str(bad)])
