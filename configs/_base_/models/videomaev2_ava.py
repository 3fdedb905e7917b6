# Spatio-temporal action detector: mmdet FastRCNN (person boxes come from the data: GT in
# training, a proposals pickle in testing) on the VideoMAE V2 ViT feature map [B, C, T', H', W']
# with mmaction2's AVA RoI head (3D RoIAlign from mmcv ops, temporal avg -> spatial max ->
# multi-label sigmoid classifier over 80 AVA actions + background column 0).
# ViT-B values; the per-size configs override arch / in_channels / featmap_stride.
model = dict(
    type='FastRCNN',
    _scope_='mmdet',
    backbone=dict(
        type='mmaction.VideoMAEv2ViT',
        arch='base',
        img_size=224,
        num_frames=16,
        tubelet_size=2,
        drop_path_rate=0.3,  # paper Table 12
        use_mean_pooling=False,  # final `norm` over tokens, as mmaction2's ViT AVA config
        out_type='featmap'),
    roi_head=dict(
        type='AVARoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor3D',
            roi_layer_type='RoIAlign',
            featmap_stride=16,  # = patch size
            output_size=8,
            with_temporal_pool=True),
        bbox_head=dict(
            type='BBoxHeadAVA',
            background_class=True,
            in_channels=768,
            num_classes=81,
            multilabel=True,
            dropout_ratio=0.5)),
    # full test frames (e.g. 256x455) are zero-padded to whole patches at the bottom/right
    data_preprocessor=dict(
        type='PatchPadDataPreprocessor',
        _scope_='mmaction',
        pad_size_divisor=16,  # = patch size
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssignerAVA',
                pos_iou_thr=0.9,
                neg_iou_thr=0.9,
                min_pos_iou=0.9),
            sampler=dict(
                type='RandomSampler',
                num=32,
                pos_fraction=1,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=1.0)),
    test_cfg=dict(rcnn=None))
