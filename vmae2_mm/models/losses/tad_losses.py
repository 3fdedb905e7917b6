"""Losses of ActionFormer: sigmoid focal loss and the centre-based 1-D DIoU loss."""
import torch
import torch.nn.functional as F
from torch import Tensor

_REDUCTIONS = ('none', 'mean', 'sum')


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'mean':
        return loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    return loss


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = 'sum') -> Tensor:
    """Sigmoid focal loss (Lin et al., arXiv 1708.02002) with soft / multi-hot targets.

    ``alpha_t * BCE(logits, targets) * (1 - p_t) ** gamma`` with ``p_t = p t + (1-p)(1-t)`` and
    ``alpha_t = alpha t + (1-alpha)(1-t)`` (the fvcore form ActionFormer uses). Written here
    rather than imported from mmdet's ``py_sigmoid_focal_loss`` (the same formula, tested
    against it) because importing ``mmdet.models`` needs mmcv's compiled ops, which TAD does
    not otherwise need.

    Args:
        logits (Tensor): [N, C] logits.
        targets (Tensor): [N, C] targets in [0, 1] (multi-hot, possibly label-smoothed).
        alpha (float): Positive/negative balance. Defaults to 0.25.
        gamma (float): Focusing exponent. Defaults to 2.
        reduction (str): 'none' | 'mean' | 'sum'. Defaults to 'sum' (ActionFormer).

    Returns:
        Tensor: [N, C] for 'none', else a scalar.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f'reduction must be one of {_REDUCTIONS}, got {reduction!r}')
    if logits.shape != targets.shape:
        raise ValueError(f'logits {list(logits.shape)} and targets {list(targets.shape)} differ')
    logits, targets = logits.float(), targets.float()
    p = logits.sigmoid()
    one_minus_pt = (1 - p) * targets + p * (1 - targets)
    weight = (alpha * targets + (1 - alpha) * (1 - targets)) * one_minus_pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction='none') * weight
    return _reduce(loss, reduction)


def ctr_diou_loss_1d(pred_offsets: Tensor, target_offsets: Tensor, reduction: str = 'sum',
                     eps: float = 1e-8) -> Tensor:
    """1-D Distance-IoU loss (Zheng et al., arXiv 1911.08287) between offsets at one point.

    A segment is ``(t - l, t + r)`` for offsets ``(l, r) >= 0`` around the same point t, so
    ``inter = min(lp, lg) + min(rp, rg)``, ``union = lp + rp + lg + rg - inter``,
    ``enclosing = max(lp, lg) + max(rp, rg)``, centre distance
    ``rho = 0.5 * ((rp - lp) - (rg - lg))`` and ``loss = 1 - inter/union + (rho/enclosing)^2``.
    mmdet's DIoU works on 2-D boxes (its diagonal includes the height), hence this function.

    Args:
        pred_offsets (Tensor): [N, 2] predicted (left, right) >= 0.
        target_offsets (Tensor): [N, 2] target (left, right) >= 0.
        reduction (str): 'none' | 'mean' | 'sum'. Defaults to 'sum' (ActionFormer).
        eps (float): Clamp of the union and the enclosing length. Defaults to 1e-8.

    Returns:
        Tensor: [N] for 'none', else a scalar.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f'reduction must be one of {_REDUCTIONS}, got {reduction!r}')
    pred_offsets, target_offsets = pred_offsets.float(), target_offsets.float()
    if (pred_offsets < 0).any() or (target_offsets < 0).any():
        raise ValueError('ctr_diou_loss_1d needs non-negative offsets (predicted offsets pass '
                         'through ReLU; targets come from positive points)')
    lp, rp = pred_offsets.unbind(-1)
    lg, rg = target_offsets.unbind(-1)
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = lp + rp + lg + rg - inter
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    loss = 1.0 - iou + torch.square(rho / enclosing.clamp(min=eps))
    return _reduce(loss, reduction)
