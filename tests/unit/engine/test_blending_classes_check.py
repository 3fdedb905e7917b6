"""Mixup/cutmix width vs head width is checked when the runner is built, not in step 1."""
import os.path as osp

import pytest
from mmengine.config import Config

from vmae2_mm.engine import build_runner
from vmae2_mm.engine.launcher import check_blending_classes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
K400 = osp.join(ROOT, 'configs', 'recognition', 'videomaev2',
                'vit-base-p16_videomaev2-hybrid-pre_32xb16-16x4x1-90e_kinetics-400.py')


def test_head_width_changed_alone_is_refused_before_the_runner_exists(tmp_path):
    cfg = Config.fromfile(K400)
    cfg.model.cls_head.num_classes = 4
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(ValueError, match=r'blending\.augments\[0\] \(MixupBlending\) has '
                       r'num_classes=400 but model\.cls_head\.num_classes=4'):
        build_runner(cfg)
    assert not osp.exists(cfg.work_dir)


def test_matching_widths_and_no_blending_pass():
    cfg = Config.fromfile(K400)
    cfg.model.cls_head.num_classes = 4
    for aug in cfg.model.data_preprocessor.blending.augments:
        aug.num_classes = 4
    check_blending_classes(cfg)
    cfg.model.data_preprocessor.blending = None
    check_blending_classes(cfg)


def test_single_blending_without_augments_list_is_checked():
    cfg = Config(dict(model=dict(
        cls_head=dict(num_classes=10),
        data_preprocessor=dict(blending=dict(type='MixupBlending', num_classes=400)))))
    with pytest.raises(ValueError, match=r'model\.data_preprocessor\.blending \(MixupBlending\)'):
        check_blending_classes(cfg)
