# ActionFormer (official THUMOS14 recipe): 2 embedding convs, 2 stem + 5 downsampling
# transformer blocks with local window attention (19), identity FPN, shared heads.

model = dict(
    type='ActionFormer',
    data_preprocessor=dict(type='TADDataPreprocessor', max_seq_len=2304),
    backbone=dict(
        type='ActionFormerBackbone',
        in_channels=1408,            # VideoMAE V2-g features
        embed_dims=512,
        num_heads=4,
        embed_kernel_size=3,
        arch=(2, 2, 5),
        window_size=19,
        scale_factor=2,
        max_seq_len=2304,
        embed_norm=True,
        drop_path=0.1,
        use_abs_pe=False),
    neck=dict(type='FPNIdentity', in_channels=[512] * 6, out_channels=512),
    head=dict(
        type='ActionFormerHead',
        num_classes=20,
        in_channels=512,
        feat_channels=512,
        num_convs=2,
        kernel_size=3,
        prior_generator=dict(
            type='TemporalPointGenerator',
            strides=(1, 2, 4, 8, 16, 32),
            regression_range=((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000))),
        prior_prob=0.01,
        center_sample='radius',
        center_sample_radius=1.5,
        loss_weight=1.0,
        label_smoothing=0.0,
        init_loss_norm=100,
        test_cfg=dict(
            pre_nms_thresh=0.001, pre_nms_topk=2000, duration_thresh=0.05,
            nms=dict(sigma=0.5, min_score=0.001, max_seg_num=200, multiclass=True,
                     voting_thresh=0.0, len_eps=1e-6))))
