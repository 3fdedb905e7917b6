# VideoMAE V2 ViT-B/16 recognizer (official fine-tune model): mean-pooled tokens -> fc_norm ->
# dropout -> linear (weights x init_scale 0.001). Recipes set num_classes, drop path, head
# dropout and the mixup/cutmix blending.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VideoMAEv2ViT',
        arch='base',
        img_size=224,
        num_frames=16,
        drop_path_rate=0.1,
        use_mean_pooling=True,
        out_type='pooled'),
    cls_head=dict(
        type='VideoMAEv2Head',
        num_classes=400,
        in_channels=768,
        init_scale=0.001,
        dropout_ratio=0.,
        label_smooth_eps=0.1,
        average_clips='prob'),
    # ImageNet mean/std in 0-255 RGB units, as every official pipeline
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
