# Kinetics-400: official VideoMAE V2 fine-tuning data pipeline.
# Class indices follow vmae2_mm/data/label_map_k400.txt (mmaction2 order).
# Train: 2 repeated augmentations per decoded video (RepeatAugDataset, official num_sample 2),
# clip-consistent RandAugment rand-m7-n4-mstd0.5-inc1, RandomResizedCrop (area 0.08-1, ratio
# 3/4-4/3) -> 224 bicubic, flip, random erasing 0.25 (per-pixel normal noise around the mean,
# the 0-255 equivalent of timm's 'pixel' mode). Val: one centre crop. Test: short side 224,
# 5 clips x 3 crops, softmax per view then average (head average_clips='prob').
dataset_type = 'VideoDataset'
data_root = 'data/kinetics400'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = 'data/kinetics400/kinetics400_val_list_videos.txt'
img_mean = [123.675, 116.28, 103.53]
img_std = [58.395, 57.12, 57.375]

train_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='VideoRandAugment', magnitude=7, num_layers=4, magnitude_std=0.5),
    dict(type='RandomResizedCrop', area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False, interpolation='bicubic'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', fill_color=img_mean,
         fill_std=img_std),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=5,
         test_mode=True),
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
        # a clip sampled per view, both decoded in one pass over the video (mmaction2's
        # default). The official code augments one sampled clip num_sample times
        # (sample_once=True); that is only 7% faster here (benchmarks/bench_data_pipeline.py:
        # 12.3 vs 11.5 clips/s per core, RandAugment dominates) and learns markedly worse in
        # tests/e2e/test_recognition_recipe_e2e.py (one clip: seed 0 top-1 0.25-0.56 after 30
        # epochs, seeds 2 and 3 still at chance loss at epoch 15, seed 1 1.0; a clip per view:
        # seeds 0 and 1 both 1.0)
        sample_once=False,
        ann_file=ann_file_train,
        data_prefix=dict(video='data/kinetics400/videos_train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video='data/kinetics400/videos_val'),
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
        data_prefix=dict(video='data/kinetics400/videos_val'),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
