# Fine-tuning stage of the tiny pre-train -> fine-tune demo: the recognizer's backbone starts
# from the dual-masking pre-training checkpoint (encoder.* keys; encoder.norm is dropped under
# mean pooling, fc_norm and the head start fresh, as official fine-tuning does):
#   python tools/train.py configs/pretrain/videomaev2/<this file> --work-dir work_dirs/ft_ramps \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/pt_ramps/epoch_25.pth
# Labels of the generated ramp clips are the ramp direction quadrant (4 classes).
_base_ = ['../../_base_/demo_recognition_synthetic_motion.py']

data_root = 'data/ramps'
num_classes = 4
img_size = 64
clip_len = 8
frame_interval = 2

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=192, depth=4, num_heads=3, mlp_ratio=4.),
        img_size=img_size,
        num_frames=clip_len,
        # the pre-training table was built natively for 8 frames at 64x64
        pos_embed_grid_from=(clip_len, img_size),
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/pt_ramps/epoch_25.pth')),
    cls_head=dict(num_classes=num_classes, in_channels=192))

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
train_dataloader = dict(dataset=dict(ann_file=f'{data_root}/train.txt',
                                     data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(ann_file=f'{data_root}/val.txt',
                                   data_prefix=dict(video=data_root), pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(ann_file=f'{data_root}/val.txt',
                                    data_prefix=dict(video=data_root), pipeline=val_pipeline))

max_epochs = 10
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True)
]
