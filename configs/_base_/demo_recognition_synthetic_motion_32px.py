# A tiny VideoMAE V2-style ViT (64 wide, 2 blocks, 8x8 patches) trained from scratch on 32x32
# generated motion clips: the README demo and the end-to-end tests. About 2 CPU-minutes.
#   python tools/make_synthetic_data.py recognition --out data/motion-32px --size 32 \
#       --num-frames 32 --speed 1 --train-per-class 48 --val-per-class 16
_base_ = ['./demo_recognition_synthetic_motion.py']

data_root = 'data/motion-32px'
img_size = 32
clip_len = 8
frame_interval = 2

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, depth=2, num_heads=2, mlp_ratio=2,
                  patch_size=8),
        img_size=img_size,
        num_frames=clip_len,
        drop_path_rate=0.0,
        pos_embed_grid_from=None),
    cls_head=dict(in_channels=64))


_decode = [dict(type='DecordInit')]
_format = [
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_pipeline = _decode + [
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1)
] + _format
val_pipeline = _decode + [
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1,
         test_mode=True)
] + _format
test_pipeline = _decode + [
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=2,
         test_mode=True)
] + _format

train_dataloader = dict(
    batch_size=16,
    dataset=dict(ann_file=f'{data_root}/train.txt', data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(ann_file=f'{data_root}/val.txt', data_prefix=dict(video=data_root),
                 pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(ann_file=f'{data_root}/val.txt', data_prefix=dict(video=data_root),
                 pipeline=test_pipeline))

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
