# Tiny VideoMAE V2 dual-masking pre-training on generated clips (CPU demo and learning check):
#   python tools/make_synthetic_data.py pretrain --out data/ramps
#   python tools/train.py configs/pretrain/videomaev2/<this file> --work-dir work_dirs/pt_ramps
# 64x64, 8 frames at stride 2 -> token grid 4x4x4; tube 0.9 leaves 2 tokens per slice, the
# running cell keeps half of the grid. Any mmaction2 list (`path label`) works as a source.
_base_ = [
    '../../_base_/default_runtime.py', '../../_base_/models/videomaev2_pretrain.py',
    '../../_base_/schedules/pretrain_adamw_cosine.py'
]

data_root = 'data/ramps'
img_size = 64
clip_len = 8
token_grid = (clip_len // 2, img_size // 16, img_size // 16)

model = dict(
    encoder=dict(arch=dict(_delete_=True, embed_dims=192, depth=4, num_heads=3, mlp_ratio=4.),
                 img_size=img_size, num_frames=clip_len),
    decoder=dict(embed_dims=96, num_heads=3, depth=2),
    fp32_decoder=False)

train_pipeline = [
    dict(type='MultiScaleCrop', input_size=img_size, scales=(1, .875, .75, .66),
         random_crop=False, max_wh_scale_gap=1, num_fixed_crops=13),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='TubeMasking', grid=token_grid, ratio=0.9),
    dict(type='RunningCellMasking', grid=token_grid, ratio=0.5),
    dict(type='PackActionInputs', algorithm_keys=('enc_hidden', 'dec_kept'), meta_keys=()),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(
        type='UnlabeledHybridDataset',
        sources=[dict(ann_file=f'{data_root}/train.txt', data_prefix=data_root)],
        clip_len=clip_len,
        frame_interval=2,
        num_sample=2,
        pipeline=train_pipeline))

base_lr = 7e-4
warmup_epochs = 1
max_epochs = 25
# fp32 on CPU; `tools/train.py --amp` switches to bf16 autocast
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0., bias_decay_mult=0., norm_decay_mult=0.,
                       custom_keys={'mask_token': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=0.01,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(checkpoint=dict(interval=5, save_best=None, max_keep_ckpts=2),
                     logger=dict(interval=6))
randomness = dict(seed=0)
