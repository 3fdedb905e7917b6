# A tiny VideoMAE V2 FastRCNN (64-wide, 2-block ViT from scratch) on generated mini-AVA
# (python tools/make_synthetic_data.py ava --out data/mini_ava --num-train-videos 30
#  --num-val-videos 8 --seconds 6 --height 96 --width 128 --seed 1): the README demo's AVA stage
# and the end-to-end test. Same detector, dataset classes and metric as the paper configs;
# 8 frames x 4, full 96x128 frames (no crop), 30 short epochs. A few CPU-minutes.
_base_ = ['./vit-small-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py']

data_root = 'data/mini_ava'
ann = f'{data_root}/annotations'
max_epochs = 30

# 8x8 patches (stride-8 feature map): people are 18-25 px wide, i.e. 1-1.5 tokens at stride 16,
# too coarse for RoIAlign to separate a person from its neighbours (frame-mAP 0.69 vs 0.81)
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, depth=2, num_heads=2, mlp_ratio=2,
                            patch_size=8),
                  num_frames=8, drop_path_rate=0.0, init_cfg=None),
    roi_head=dict(bbox_roi_extractor=dict(featmap_stride=8),
                  bbox_head=dict(in_channels=64, dropout_ratio=0.0)),
    data_preprocessor=dict(pad_size_divisor=8))
train_pipeline = [
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=4),
    dict(type='RawFrameDecode'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=4, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')
]
_common = dict(label_file=f'{ann}/ava_action_list_v2.2_for_activitynet_2019.pbtxt',
               data_prefix=dict(img=f'{data_root}/rawframes'), timestamp_start=900,
               timestamp_end=906)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=f'{ann}/ava_train_v2.2.csv',
                 exclude_file=f'{ann}/ava_train_excluded_timestamps_v2.2.csv',
                 proposal_file=f'{ann}/ava_dense_proposals_train.FAIR.recall_93.9.pkl',
                 pipeline=train_pipeline, **_common))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=f'{ann}/ava_val_v2.2.csv',
                 exclude_file=f'{ann}/ava_val_excluded_timestamps_v2.2.csv',
                 proposal_file=f'{ann}/ava_dense_proposals_val.FAIR.recall_93.9.pkl',
                 pipeline=val_pipeline, **_common))
val_dataloader = test_dataloader
test_evaluator = dict(ann_file=f'{ann}/ava_val_v2.2.csv', label_file=_common['label_file'],
                      exclude_file=f'{ann}/ava_val_excluded_timestamps_v2.2.csv')
val_evaluator = test_evaluator
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
# from scratch a 64-wide ViT needs a high lr (stride 16: frame-mAP 0.69 at 6e-3, 0.63 at 2e-3)
optim_wrapper = dict(optimizer=dict(lr=6e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, eta_min=1e-5, by_epoch=True, begin=2,
         end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, save_best=None))
randomness = dict(seed=0)
