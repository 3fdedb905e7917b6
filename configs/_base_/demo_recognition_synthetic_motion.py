# ViT-S/16 VideoMAE V2 recognizer, 16x4x1 sampling, on generated motion clips
# (python tools/make_synthetic_data.py recognition --out data/motion). Trains from scratch on
# CPU in minutes at 64x64; point `data_root`/`num_classes`/`img_size` at real data to reuse it.
_base_ = ['./default_runtime.py']

data_root = 'data/motion'
num_classes = 4
img_size = 64
clip_len = 16
frame_interval = 4

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VideoMAEv2ViT',
        arch='small',
        img_size=img_size,
        num_frames=clip_len,
        drop_path_rate=0.1,
        out_type='pooled'),
    cls_head=dict(
        type='VideoMAEv2Head',
        num_classes=num_classes,
        in_channels=384,
        init_scale=0.001,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

dataset_type = 'VideoDatasetChecked'
# No Flip: mirroring a clip would swap left/right motion and change its label.
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
# multi-view test: 2 temporal clips, softmax per view, then averaged (average_clips='prob')
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=2,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{data_root}/train.txt',
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline,
        on_bad_video='skip'))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{data_root}/val.txt',
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True,
        check_on_init=True))
test_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{data_root}/val.txt',
        data_prefix=dict(video=data_root),
        pipeline=test_pipeline,
        test_mode=True,
        check_on_init=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 1e-3
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 3, eta_min=1e-6, by_epoch=True, begin=3,
         end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(interval=5, save_best='acc/top1', rule='greater'),
                     logger=dict(interval=10))
# lr above is for a total batch of 8 (1 process x 8); --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=8)
