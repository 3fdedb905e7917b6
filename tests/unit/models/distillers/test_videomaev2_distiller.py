"""VideoMAEv2Distiller with tiny recognizers: teacher loading, KL value, freezing, checkpoints."""
import copy

import pytest
import torch
import torch.nn.functional as F

import vmae2_mm  # noqa: F401
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.runner.checkpoint import load_state_dict

PRE = dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], format_shape='NCTHW')


def recognizer(dims, depth, heads, num_classes=5):
    return dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch=dict(embed_dims=dims, depth=depth,
                                                      num_heads=heads),
                      img_size=32, num_frames=4, pos_embed_grid_from=None),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes, in_channels=dims,
                      init_scale=1.0),
        data_preprocessor=PRE)


STUDENT, TEACHER = recognizer(32, 1, 2), recognizer(64, 2, 2)


def teacher_checkpoint(path, seed=0, official=False):
    torch.manual_seed(seed)
    teacher = MODELS.build(TEACHER)
    teacher.init_weights()
    sd = teacher.state_dict()
    if official:  # official fine-tune layout: bare backbone keys + head.*, fp16
        sd = {(k.replace('cls_head.fc_cls.', 'head.') if k.startswith('cls_head.')
               else k[len('backbone.'):]): v.half() for k, v in sd.items()}
        sd = {'module': sd}
    torch.save(sd, path)
    return teacher


def batch(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(b):
        ds = ActionDataSample()
        ds.set_gt_label(i % 5)
        samples.append(ds)
    return dict(inputs=[torch.randint(0, 256, (1, 3, 4, 32, 32), generator=g,
                                      dtype=torch.uint8) for _ in range(b)],
                data_samples=samples)


@pytest.mark.parametrize('official', [False, True])
def test_teacher_loaded_frozen_and_kl_matches_hand_computation(tmp_path, official):
    ref = teacher_checkpoint(tmp_path / 't.pth', official=official)
    model = MODELS.build(dict(type='VideoMAEv2Distiller', student=STUDENT, teacher=TEACHER,
                              teacher_checkpoint=str(tmp_path / 't.pth'), temperature=2.0))
    model.init_weights()
    for k, v in ref.state_dict().items():
        assert torch.allclose(model.teacher.state_dict()[k], v, atol=1e-3 if official else 0), k
    model.train()
    assert not model.teacher.training and model.student.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    data = model.data_preprocessor(batch(), True)
    losses = model(**data, mode='loss')
    with torch.no_grad():
        t = model.teacher.extract_feat(data['inputs'], stage='head')[0]
    s = model(**data, mode='tensor')
    expect = 4.0 * (F.softmax(t / 2, -1) * (F.log_softmax(t / 2, -1) - F.log_softmax(s / 2, -1))
                    ).sum(-1).mean()
    assert torch.allclose(losses['loss_kd'], expect, atol=1e-6)
    losses['loss_kd'].backward()
    assert model.student.backbone.blocks[0].attn.qkv.weight.grad is not None
    assert all(p.grad is None for p in model.teacher.parameters())


def test_student_equal_to_teacher_has_zero_kd_and_ce_term(tmp_path):
    teacher_checkpoint(tmp_path / 't.pth')
    model = MODELS.build(dict(type='VideoMAEv2Distiller', student=TEACHER, teacher=TEACHER,
                              teacher_checkpoint=str(tmp_path / 't.pth'), ce_weight=0.5))
    model.init_weights()
    model.student.load_state_dict(model.teacher.state_dict())
    model.eval()
    data = model.data_preprocessor(batch(), False)
    losses = model(**data, mode='loss')
    assert losses['loss_kd'].abs().item() < 1e-6
    labels = torch.tensor([0, 1, 2])
    logits = model(**data, mode='tensor')
    assert torch.allclose(losses['loss_cls'], 0.5 * F.cross_entropy(logits, labels), atol=1e-6)
    preds = model(**data, mode='predict')
    assert preds[0].pred_score.numel() == 5


def test_distillation_lowers_kl_and_checkpoints_hold_only_the_student(tmp_path):
    teacher_checkpoint(tmp_path / 't.pth', seed=1)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='VideoMAEv2Distiller', student=STUDENT, teacher=TEACHER,
                              teacher_checkpoint=str(tmp_path / 't.pth')))
    model.init_weights()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    data = model.data_preprocessor(batch(b=4, seed=2), True)
    first = None
    for _ in range(20):
        loss = model(**data, mode='loss')['loss_kd']
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    sd = model.state_dict()
    assert sd and all(k.startswith('student.') for k in sd)
    fresh = MODELS.build(dict(type='VideoMAEv2Distiller', student=STUDENT, teacher=TEACHER,
                              teacher_checkpoint=str(tmp_path / 't.pth')))
    fresh.init_weights()
    teacher_before = copy.deepcopy(fresh.teacher.state_dict())
    load_state_dict(fresh, sd, strict=True)  # mmengine's loader: teacher keys filled in
    result = fresh.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in fresh.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k])
    assert torch.equal(fresh.student.cls_head.fc_cls.weight, model.student.cls_head.fc_cls.weight)
    # the student alone loads into a plain recognizer with the 'student.' prefix stripped
    plain = MODELS.build(STUDENT)
    plain.load_state_dict({k[len('student.'):]: v for k, v in sd.items()})


def test_bad_teacher_checkpoint_and_arguments(tmp_path):
    torch.save({'state_dict': {'backbone.blocks.0.attn.qkv.weight': torch.zeros(3, 3)}},
               tmp_path / 'bad.pth')
    model = MODELS.build(dict(type='VideoMAEv2Distiller', student=STUDENT, teacher=TEACHER,
                              teacher_checkpoint=str(tmp_path / 'bad.pth')))
    with pytest.raises(ValueError, match=r'qkv.weight: checkpoint \(3, 3\)'):
        model.init_weights()
    with pytest.raises(ValueError, match='temperature'):
        MODELS.build(dict(type='VideoMAEv2Distiller', student=STUDENT, teacher=TEACHER,
                          temperature=0))
    with pytest.raises(ValueError, match='same classes'):
        other = MODELS.build(dict(type='VideoMAEv2Distiller', student=recognizer(32, 1, 2, 7),
                                  teacher=TEACHER))
        other(**other.data_preprocessor(batch(), True), mode='loss')
