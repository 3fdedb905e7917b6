"""ActionFormer's classification / regression heads, label assignment, losses and decoding."""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS, TASK_UTILS
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ..localizers.blocks import ChannelLayerNorm, MaskedConv1D, Scale
from ..localizers.soft_nms import batched_soft_nms_1d
from ..losses import ctr_diou_loss_1d, sigmoid_focal_loss

DEFAULT_TEST_CFG = dict(pre_nms_thresh=0.001, pre_nms_topk=2000, duration_thresh=0.05,
                        nms=dict(sigma=0.5, min_score=0.001, max_seg_num=200,
                                 multiclass=True, voting_thresh=0.0, len_eps=1e-6))


@MODELS.register_module()
class ActionFormerHead(BaseModule):
    """Shared conv heads over the pyramid, with ActionFormer's training targets and decoding.

    Classification: ``num_convs`` x [MaskedConv1D(k) -> LN -> ReLU] then MaskedConv1D(k) to
    ``num_classes`` logits (bias from the prior probability). Regression: the same trunk, then
    MaskedConv1D(k) to 2 offsets, a learnable :class:`Scale` per level and ReLU; offsets are in
    units of the level stride. Both trunks are shared across levels.

    Training (official ``label_points`` / ``losses``): centre sampling, regression ranges, the
    shortest GT per point with multi-hot ties (lengths within 1e-3), sigmoid focal loss summed
    over valid points and DIoU summed over positives, both divided by an EMA of the number of
    positives (``loss_normalizer`` buffer, so it is checkpointed and resumed).

    Args:
        num_classes (int): Action classes C.
        in_channels (int): Channels of the pyramid features.
        feat_channels (int): Channels inside the heads. Defaults to 512.
        num_convs (int): Trunk convs (official ``head_num_layers - 1``). Defaults to 2.
        kernel_size (int): Conv kernel. Defaults to 3.
        with_norm (bool): LN in the trunks (then trunk convs have no bias). Defaults to True.
        prior_generator (dict): :class:`TemporalPointGenerator` config (strides, ranges).
        prior_prob (float): Initial foreground probability of the classifier. Defaults to 0.01.
        empty_cls (Sequence[int]): Classes without training data; their prior is 1e-6.
        center_sample (str): 'radius' or 'none'. Defaults to 'radius'.
        center_sample_radius (float): Radius in strides. Defaults to 1.5.
        loss_weight (float): Weight of the regression loss; <= 0 balances it automatically
            (cls.detach() / max(reg, 0.01)). Defaults to 1.0.
        label_smoothing (float): eps in ``t (1 - eps) + eps / (C + 1)``. Defaults to 0.
        init_loss_norm (float): Initial value of the positive-count EMA. Defaults to 100.
        loss_norm_momentum (float): EMA momentum. Defaults to 0.9.
        test_cfg (dict, optional): Decoding: ``pre_nms_thresh`` (0.001), ``pre_nms_topk``
            per level (2000), ``duration_thresh`` in grid units (0.05), ``nms`` = dict(sigma,
            min_score, max_seg_num, multiclass, voting_thresh, len_eps), see
            :func:`batched_soft_nms_1d`.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 512,
                 num_convs: int = 2, kernel_size: int = 3, with_norm: bool = True,
                 prior_generator: dict = dict(
                     type='TemporalPointGenerator', strides=(1, 2, 4, 8, 16, 32),
                     regression_range=((0, 4), (4, 8), (8, 16), (16, 32), (32, 64),
                                       (64, 10000))),
                 prior_prob: float = 0.01, empty_cls: Sequence[int] = (),
                 center_sample: str = 'radius', center_sample_radius: float = 1.5,
                 loss_weight: float = 1.0, label_smoothing: float = 0.0,
                 init_loss_norm: float = 100.0, loss_norm_momentum: float = 0.9,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if center_sample not in ('radius', 'none'):
            raise ValueError(f"center_sample must be 'radius' or 'none', got {center_sample!r}")
        if not 0 < prior_prob < 1:
            raise ValueError(f'prior_prob must be in (0, 1), got {prior_prob}')
        self.num_classes = num_classes
        self.prior_generator = TASK_UTILS.build(prior_generator)
        self.num_levels = len(self.prior_generator.strides)
        self.center_sample = center_sample
        self.center_sample_radius = center_sample_radius
        self.loss_weight = loss_weight
        self.label_smoothing = label_smoothing
        self.loss_norm_momentum = loss_norm_momentum
        self.register_buffer('loss_normalizer', torch.tensor(float(init_loss_norm)))
        self.test_cfg = _merge_test_cfg(test_cfg)

        def trunk():
            convs, norms = nn.ModuleList(), nn.ModuleList()
            for i in range(num_convs):
                convs.append(MaskedConv1D(in_channels if i == 0 else feat_channels,
                                          feat_channels, kernel_size, bias=not with_norm))
                norms.append(ChannelLayerNorm(feat_channels) if with_norm else nn.Identity())
            return convs, norms

        self.cls_convs, self.cls_norms = trunk()
        self.reg_convs, self.reg_norms = trunk()
        last = feat_channels if num_convs > 0 else in_channels
        self.cls_out = MaskedConv1D(last, num_classes, kernel_size)
        self.reg_out = MaskedConv1D(last, 2, kernel_size)
        self.scales = nn.ModuleList([Scale() for _ in range(self.num_levels)])
        nn.init.constant_(self.cls_out.conv.bias, -math.log((1 - prior_prob) / prior_prob))
        for c in empty_cls:
            nn.init.constant_(self.cls_out.conv.bias[c], -math.log((1 - 1e-6) / 1e-6))

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Sequence[Tensor],
                masks: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per-level outputs.

        Args:
            feats (Sequence[Tensor]): [B, C, T_l] per level.
            masks (Sequence[Tensor]): [B, 1, T_l] bool per level.

        Returns:
            tuple[list[Tensor], list[Tensor]]: logits [B, T_l, num_classes] and offsets
            [B, T_l, 2] (>= 0, in strides) per level.
        """
        if len(feats) != self.num_levels:
            raise ValueError(f'head has {self.num_levels} levels, got {len(feats)}')
        logits, offsets = [], []
        for lvl, (x, mask) in enumerate(zip(feats, masks)):
            c = x
            for conv, norm in zip(self.cls_convs, self.cls_norms):
                c = F.relu(norm(conv(c, mask)[0]))
            r = x
            for conv, norm in zip(self.reg_convs, self.reg_norms):
                r = F.relu(norm(conv(r, mask)[0]))
            logits.append(self.cls_out(c, mask)[0].permute(0, 2, 1))
            offsets.append(F.relu(self.scales[lvl](self.reg_out(r, mask)[0])).permute(0, 2, 1))
        return logits, offsets

    # ----------------------------------------------------------------- training
    @torch.no_grad()
    def get_targets(self, points: Tensor, gt_segments: Tensor,
                    gt_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Targets of one video (official ``label_points_single_video``).

        Args:
            points (Tensor): [P, 4] all levels' points (t, reg_lo, reg_hi, stride).
            gt_segments (Tensor): [M, 2] GT (start, end) in grid units (level-0 index).
            gt_labels (Tensor): [M] long labels.

        Returns:
            tuple[Tensor, Tensor]: multi-hot class targets [P, C] and regression targets
            [P, 2] (left, right) divided by the point's stride.
        """
        num_pts, num_gts = points.shape[0], gt_segments.shape[0]
        if num_gts == 0:
            return points.new_zeros(num_pts, self.num_classes), points.new_zeros(num_pts, 2)
        gt_segments = gt_segments.to(points)
        t, lo, hi, stride = (points[:, i, None] for i in range(4))
        s, e = gt_segments[None, :, 0], gt_segments[None, :, 1]
        left, right = t - s, e - t                                      # [P, M]
        if self.center_sample == 'radius':
            centre = 0.5 * (s + e)
            r = stride * self.center_sample_radius
            inside = torch.minimum(t - torch.maximum(centre - r, s),
                                   torch.minimum(centre + r, e) - t) > 0
        else:
            inside = torch.minimum(left, right) > 0
        max_dist = torch.maximum(left, right)
        in_range = (max_dist >= lo) & (max_dist <= hi)
        lens = (e - s).expand(num_pts, num_gts).clone()
        lens.masked_fill_(~(inside & in_range), float('inf'))
        min_len, min_idx = lens.min(dim=1)
        # GTs sharing the shortest length (e.g. THUMOS CliffDiving inside Diving) all count
        tied = (lens <= min_len[:, None] + 1e-3) & torch.isfinite(lens)
        one_hot = F.one_hot(gt_labels.long(), self.num_classes).to(points)
        cls_targets = (tied.to(points) @ one_hot).clamp_(0.0, 1.0)
        rows = torch.arange(num_pts, device=points.device)
        reg_targets = torch.stack([left[rows, min_idx], right[rows, min_idx]], -1) / stride
        return cls_targets, reg_targets

    def loss(self, feats: Sequence[Tensor], masks: Sequence[Tensor],
             gt_segments: Sequence[Tensor], gt_labels: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Focal + DIoU losses over a batch.

        Args:
            feats (Sequence[Tensor]): [B, C, T_l] per level.
            masks (Sequence[Tensor]): [B, 1, T_l] bool per level.
            gt_segments (Sequence[Tensor]): per video [M_b, 2] grid units.
            gt_labels (Sequence[Tensor]): per video [M_b] long.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_reg`` (already weighted) and the logged
            ``num_pos`` and ``normalizer`` (names without 'loss': mmengine sums those).
        """
        logits, offsets = self(feats, masks)
        points = torch.cat(self.prior_generator([x.shape[-1] for x in feats], feats[0].device))
        targets = [self.get_targets(points, s, l) for s, l in zip(gt_segments, gt_labels)]
        gt_cls = torch.stack([t[0] for t in targets])                  # [B, P, C]
        gt_off = torch.stack([t[1] for t in targets])                  # [B, P, 2]
        valid = torch.cat([m[:, 0] for m in masks], dim=1)             # [B, P]
        pos = (gt_cls.sum(-1) > 0) & valid
        num_pos = int(pos.sum())
        if self.training:
            self.loss_normalizer.mul_(self.loss_norm_momentum).add_(
                (1 - self.loss_norm_momentum) * max(num_pos, 1))
        norm = self.loss_normalizer.clone()

        target = gt_cls[valid] * (1 - self.label_smoothing) + \
            self.label_smoothing / (self.num_classes + 1)
        loss_cls = sigmoid_focal_loss(torch.cat(logits, 1)[valid], target,
                                      reduction='sum') / norm
        pred_off = torch.cat(offsets, 1)[pos]
        if num_pos == 0:
            loss_reg = pred_off.sum() * 0.0
        else:
            loss_reg = ctr_diou_loss_1d(pred_off, gt_off[pos], reduction='sum') / norm
        if self.loss_weight > 0:
            weight = self.loss_weight
        else:
            weight = loss_cls.detach() / max(loss_reg.item(), 0.01)
        return dict(loss_cls=loss_cls, loss_reg=loss_reg * weight,
                    num_pos=torch.tensor(float(num_pos)), normalizer=norm)

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def predict(self, feats: Sequence[Tensor], masks: Sequence[Tensor],
                to_seconds: Sequence[Callable[[Tensor], Tensor]]) -> List[InstanceData]:
        """Decode, filter, Soft-NMS and convert to seconds, video by video.

        Args:
            feats (Sequence[Tensor]): [B, C, T_l] per level.
            masks (Sequence[Tensor]): [B, 1, T_l] bool per level.
            to_seconds (Sequence[callable]): per video, maps grid positions [K, 2] to seconds
                (clamped to the video).

        Returns:
            list[InstanceData]: per video ``segments`` [K, 2] seconds, ``scores`` [K],
            ``labels`` [K] long.
        """
        logits, offsets = self(feats, masks)
        points = self.prior_generator([x.shape[-1] for x in feats], feats[0].device)
        results = []
        for b, convert in enumerate(to_seconds):
            segs, scores, labels = self.decode(
                [x[b] for x in logits], [x[b] for x in offsets], points,
                [m[b, 0] for m in masks])
            segs, scores, labels = batched_soft_nms_1d(
                segs.cpu(), scores.cpu(), labels.cpu(), **self.test_cfg['nms'])
            res = InstanceData()
            res.segments = convert(segs) if len(segs) else segs.new_zeros(0, 2)
            res.scores = scores
            res.labels = labels
            results.append(res)
        return results

    def decode(self, logits: Sequence[Tensor], offsets: Sequence[Tensor],
               points: Sequence[Tensor], masks: Sequence[Tensor]) -> Tuple[Tensor, Tensor,
                                                                            Tensor]:
        """Candidates of one video before NMS (official ``inference_single_video``).

        Per level: prob = sigmoid * mask; keep prob > ``pre_nms_thresh``; the top
        ``pre_nms_topk``; segment ``[t - l s, t + r s]``; drop lengths <= ``duration_thresh``.

        Args:
            logits (Sequence[Tensor]): [T_l, C] per level.
            offsets (Sequence[Tensor]): [T_l, 2] per level.
            points (Sequence[Tensor]): [T_l, 4] per level.
            masks (Sequence[Tensor]): [T_l] bool per level.

        Returns:
            tuple[Tensor, Tensor, Tensor]: segments [N, 2] grid units, scores [N], labels [N].
        """
        cfg = self.test_cfg
        all_segs, all_scores, all_labels = [], [], []
        for cls_l, off_l, pts_l, mask_l in zip(logits, offsets, points, masks):
            prob = (cls_l.sigmoid() * mask_l[:, None]).flatten()
            keep = torch.nonzero(prob > cfg['pre_nms_thresh']).squeeze(1)
            prob = prob[keep]
            prob, order = prob.sort(descending=True, stable=True)
            prob, keep = prob[:cfg['pre_nms_topk']], keep[order[:cfg['pre_nms_topk']]]
            pt_idx = torch.div(keep, self.num_classes, rounding_mode='floor')
            labels = keep % self.num_classes
            pts, off = pts_l[pt_idx], off_l[pt_idx]
            segs = torch.stack([pts[:, 0] - off[:, 0] * pts[:, 3],
                                pts[:, 0] + off[:, 1] * pts[:, 3]], -1)
            ok = (segs[:, 1] - segs[:, 0]) > cfg['duration_thresh']
            all_segs.append(segs[ok])
            all_scores.append(prob[ok])
            all_labels.append(labels[ok])
        return torch.cat(all_segs), torch.cat(all_scores), torch.cat(all_labels)


def _merge_test_cfg(test_cfg: Optional[dict]) -> dict:
    """Defaults overlaid by ``test_cfg``, with unknown keys rejected."""
    cfg = dict(DEFAULT_TEST_CFG, nms=dict(DEFAULT_TEST_CFG['nms']))
    for k, v in (test_cfg or {}).items():
        if k not in cfg:
            raise KeyError(f'unknown ActionFormerHead test_cfg key {k!r}; expected one of '
                           f'{sorted(cfg)}')
        if k == 'nms':
            unknown = set(v) - set(cfg['nms'])
            if unknown:
                raise KeyError(f'unknown test_cfg.nms keys {sorted(unknown)}; expected '
                               f'{sorted(cfg["nms"])}')
            cfg['nms'].update(v)
        else:
            cfg[k] = v
    return cfg
