"""Logit distillation end to end through the tools: a tiny recognizer is fine-tuned as the
teacher (``tools/train.py``), a half-width student is distilled from its checkpoint with the KL
objective (``tools/train.py`` on the distillation config), and the student checkpoint is
converted (``tools/convert_checkpoint.py``) and tested as a plain recognizer
(``tools/test.py``), giving exactly the scores the distiller's student gives."""
import glob
import json
import math
import os.path as osp
import pickle
import re

import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT, run_python

TEACHER_CFG = str(REPO_ROOT / 'configs/recognition/videomaev2/'
                  'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
DISTILL_CFG = str(REPO_ROOT / 'configs/distillation/videomaev2/'
                  'vit-nano-p8_vit-tiny-teacher_1xb16-8x2x1-10e_synthetic-motion-32px.py')
TEACHER_EPOCHS, DISTILL_EPOCHS = 6, 8
#: the student as a plain recognizer: the tiny recognition config at the student's width
STUDENT_OPTIONS = ['model.backbone.arch.embed_dims=32', 'model.cls_head.in_channels=32']


def data_options(data, epochs):
    opts = [f'{split}_dataloader.dataset.{key}={value}' for split in ('train', 'val', 'test')
            for key, value in (('ann_file', osp.join(data, 'train.txt' if split == 'train'
                                                     else 'val.txt')),
                               ('data_prefix.video', data))]
    opts += [f'{split}_dataloader.{key}={value}' for split in ('train', 'val', 'test')
             for key, value in (('num_workers', 0), ('persistent_workers', False))]
    if epochs:
        opts += [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
                 f'default_hooks.checkpoint.interval={epochs}', 'default_hooks.logger.interval=1',
                 f'param_scheduler.1.T_max={epochs - 1}', f'param_scheduler.1.end={epochs}']
    return opts


def logged(work_dir, key):
    (scalars,) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r[key] for r in rows if key in r]


def top1(text):
    found = re.findall(r'Epoch\(test\).*?acc/top1: ([0-9.]+)', text)
    assert found, text[-3000:]
    return float(found[-1])


@pytest.mark.e2e
def test_distil_tiny_teacher_into_student_and_test_it_as_recognizer(tmp_path):
    from vmae2_mm.testing.recognition import generate_motion_dataset
    data = str(tmp_path / 'motion')
    generate_motion_dataset(data, num_classes=4, train_per_class=16, val_per_class=4,
                            num_frames=32, size=32, speed=1.0, seed=0)

    teacher_dir = str(tmp_path / 'teacher')
    # head init scale 1 (not 0.001): after a few epochs the teacher's logits already differ
    # from uniform enough to give the student a KL signal well above float noise
    run_python(['tools/train.py', TEACHER_CFG, '--work-dir', teacher_dir, '--seed', '0',
                '--cfg-options', 'model.cls_head.init_scale=1.0',
                *data_options(data, TEACHER_EPOCHS)])
    teacher_ckpt = osp.join(teacher_dir, f'epoch_{TEACHER_EPOCHS}.pth')

    kd_dir = str(tmp_path / 'distil')
    run_python(['tools/train.py', DISTILL_CFG, '--work-dir', kd_dir, '--seed', '0',
                '--cfg-options', f'model.teacher_checkpoint={teacher_ckpt}',
                *data_options(data, DISTILL_EPOCHS)])
    kd = logged(kd_dir, 'loss_kd')
    print('distillation KL per iteration:', [round(v, 4) for v in kd])
    assert len(kd) == DISTILL_EPOCHS * 4  # 64 clips / batch 16
    assert all(math.isfinite(v) for v in kd)
    # the student starts near uniform (head init 0.001) and learns the teacher's logits;
    # measured: KL(teacher || uniform) ~1.7e-3 for this teacher
    first, last = np.mean(kd[:4]), np.mean(kd[-4:])
    assert first > 2e-4, kd[:4]  # a real signal, far above float32 noise
    assert last < 0.5 * first, kd

    kd_ckpt = osp.join(kd_dir, f'epoch_{DISTILL_EPOCHS}.pth')
    state = torch.load(kd_ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert state and all(k.startswith('student.') for k in state)  # no teacher weights saved

    student_ckpt = str(tmp_path / 'student.pth')
    run_python(['tools/convert_checkpoint.py', kd_ckpt, student_ckpt])
    dumps = {}
    for name, cfg, ckpt, opts in (
            ('distiller', DISTILL_CFG, kd_ckpt, [f'model.teacher_checkpoint={teacher_ckpt}']),
            ('recognizer', TEACHER_CFG, student_ckpt, STUDENT_OPTIONS)):
        dumps[name] = str(tmp_path / f'{name}.pkl')
        proc = run_python(['tools/test.py', cfg, ckpt, '--work-dir', str(tmp_path / name),
                           '--dump', dumps[name], '--cfg-options', *opts,
                           *data_options(data, 0)])
        text = proc.stdout + proc.stderr
        assert 'unexpected key' not in text and 'missing keys' not in text, text[-3000:]
        dumps[name + '_top1'] = top1(text)
    print(f"student top-1: {dumps['recognizer_top1']:.4f} as a recognizer, "
          f"{dumps['distiller_top1']:.4f} inside the distiller")
    kd_preds, rec_preds = (pickle.loads(open(dumps[n], 'rb').read())
                           for n in ('distiller', 'recognizer'))
    assert len(rec_preds) == len(kd_preds) == 16
    for a, b in zip(kd_preds, rec_preds):
        torch.testing.assert_close(torch.as_tensor(b['pred_score']),
                                   torch.as_tensor(a['pred_score']), rtol=1e-5, atol=1e-6)
    assert dumps['recognizer_top1'] == dumps['distiller_top1']
