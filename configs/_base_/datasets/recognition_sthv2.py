# Something-Something V2: official VideoMAE V2 fine-tuning data pipeline.
# mmaction2's UniformSample test offsets (1/3, 2/3 of a segment) differ slightly from
# the official ones (0, 1/2).
# Train: 2 repeated augmentations per decoded video (RepeatAugDataset, official num_sample 2),
# clip-consistent RandAugment rand-m7-n4-mstd0.5-inc1, RandomResizedCrop (area 0.08-1, ratio
# 3/4-4/3) -> 224 bicubic, random erasing 0.25 (per-pixel normal noise around the mean,
# the 0-255 equivalent of timm's 'pixel' mode). Val: one centre crop. Test: short side 224,
# 2 temporal offsets x 3 crops (TSN-style 16-segment sampling), softmax per view then average
# (head average_clips='prob').
dataset_type = 'VideoDataset'
data_root = 'data/sthv2'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
ann_file_test = 'data/sthv2/sthv2_val_list_videos.txt'
img_mean = [123.675, 116.28, 103.53]
img_std = [58.395, 57.12, 57.375]

train_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='VideoRandAugment', magnitude=7, num_layers=4, magnitude_std=0.5),
    dict(type='RandomResizedCrop', area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False, interpolation='bicubic'),
    # no Flip: left/right matters for Something-Something (official: no flip for SSv2)
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', fill_color=img_mean,
         fill_std=img_std),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=16, num_clips=2, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(
        type='RepeatAugDataset',
        num_repeats=2,
        ann_file=ann_file_train,
        data_prefix=dict(video='data/sthv2/videos'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video='data/sthv2/videos'),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        data_prefix=dict(video='data/sthv2/videos'),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
