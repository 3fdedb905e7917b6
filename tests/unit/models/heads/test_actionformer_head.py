"""ActionFormerHead: label assignment on hand-checked fixtures, losses, init."""
import math

import pytest
import torch

import vmae2_mm  # noqa: F401
from vmae2_mm.models.heads import ActionFormerHead
from vmae2_mm.models.losses import ctr_diou_loss_1d, sigmoid_focal_loss


@pytest.fixture(autouse=True)
def single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _head(**kw):
    return ActionFormerHead(num_classes=3, in_channels=8, feat_channels=8, **kw)


def _points(head, t0=16):
    return torch.cat(head.prior_generator([t0 // s for s in head.prior_generator.strides]))


def test_prior_bias_and_scales():
    head = _head(empty_cls=(2, ))
    b = head.cls_out.conv.bias
    assert b[0].item() == pytest.approx(-math.log(99))       # -4.595 for pi = 0.01
    assert b[2].item() == pytest.approx(-math.log((1 - 1e-6) / 1e-6))
    assert [s.scale.item() for s in head.scales] == [1.0] * 6
    assert head.loss_normalizer.item() == 100.0


def test_targets_centre_sampling_and_regression_range():
    head = _head()
    pts = _points(head)                       # levels: 16, 8, 4, 2, 1, 1 points
    cls, reg = head.get_targets(pts, torch.tensor([[2.0, 5.0]]), torch.tensor([1]))
    pos = torch.nonzero(cls.sum(1)).squeeze(1).tolist()
    # level 0 (stride 1, range [0, 4]): centre 3.5, radius 1.5 -> t in (2, 5) -> t = 3, 4;
    # t = 3: max(1, 2) = 2 in range; t = 4: max(2, 1) = 2 in range.
    # level 1 (stride 2, points 0, 2, 4, ..., range [4, 8]): radius 3 covers (2, 5): t = 4
    # has max(2, 1) = 2 < 4 -> out of range. No other level reaches.
    assert pos == [3, 4]
    assert cls[3].tolist() == [0.0, 1.0, 0.0]
    assert reg[3].tolist() == [1.0, 2.0] and reg[4].tolist() == [2.0, 1.0]


def test_targets_shortest_gt_wins_and_equal_lengths_share_the_point():
    head = _head(center_sample='none')
    pts = _points(head)
    gts = torch.tensor([[0.0, 6.0], [2.0, 5.0], [2.0005, 5.0]])   # the last two tie (1e-3)
    cls, reg = head.get_targets(pts, gts, torch.tensor([0, 1, 2]))
    # t = 3 (level 0) lies inside all three; the two shortest tie -> multi-hot {1, 2},
    # regression from the strict argmin (GT 2, length 2.9995: left 0.9995, right 2)
    assert cls[3].tolist() == [0.0, 1.0, 1.0]
    assert reg[3].tolist() == pytest.approx([0.9995, 2.0])
    # t = 2 only strictly inside GT 0 (max(2, 4) = 4 in range [0, 4]) -> class 0;
    # t = 1 is inside GT 0 too but max(1, 5) = 5 is out of level 0's range
    assert cls[2].tolist() == [1.0, 0.0, 0.0] and reg[2].tolist() == [2.0, 4.0]
    assert cls[1].tolist() == [0.0, 0.0, 0.0]


def test_no_gt_gives_empty_targets():
    head = _head()
    pts = _points(head)
    cls, reg = head.get_targets(pts, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    assert cls.shape == (len(pts), 3) and cls.sum() == 0 and reg.abs().sum() == 0


def test_diou_hand_values():
    pred = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    gt = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    loss = ctr_diou_loss_1d(pred, gt, reduction='none')
    # identical -> 0; [t-2, t] vs [t-1, t+1]: inter 1, union 3, enclosing 3, rho = -1
    assert loss[0].item() == pytest.approx(0.0)
    assert loss[1].item() == pytest.approx(1 - 1 / 3 + (1 / 3)**2)
    with pytest.raises(ValueError, match='non-negative offsets'):
        ctr_diou_loss_1d(-pred, gt)


def test_focal_loss_formula():
    x = torch.tensor([[2.0, -1.0]])
    t = torch.tensor([[1.0, 0.0]])
    p = torch.sigmoid(x)
    ref = -(0.25 * (1 - p[0, 0])**2 * torch.log(p[0, 0])) - \
        (0.75 * p[0, 1]**2 * torch.log(1 - p[0, 1]))
    assert sigmoid_focal_loss(x, t).item() == pytest.approx(ref.item(), rel=1e-6)


def test_unknown_test_cfg_key_is_rejected():
    with pytest.raises(KeyError, match="unknown test_cfg.nms keys \\['sgima'\\]"):
        _head(test_cfg=dict(nms=dict(sgima=0.5)))


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_focal_loss_equals_mmdet(reduction):
    """Ours is mmdet's py_sigmoid_focal_loss (not imported at run time: mmdet.models needs
    mmcv's compiled ops)."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 7, generator=g) * 3
    t = (torch.rand(50, 7, generator=g) > 0.8).float() * 0.9 + 0.05  # label-smoothed
    ours = sigmoid_focal_loss(x, t, alpha=0.3, gamma=1.5, reduction=reduction)
    ref = py_sigmoid_focal_loss(x, t, gamma=1.5, alpha=0.3, reduction=reduction)
    assert torch.allclose(ours, ref, atol=1e-7, rtol=1e-6)
