# VideoMAE V2 ViT-B/16 dual-masking pre-training on UnlabeledHybrid (official ViT-B script:
# 32 GPUs x 32 videos x 4 repeated views, tube 0.9 + running cell 0.5, 200 passes = "800e").
# Lists: `path 0 -1` (videos) or `frame_dir start_idx total_frames` (frame folders) per line.
_base_ = [
    '../../_base_/default_runtime.py', '../../_base_/models/videomaev2_pretrain.py',
    '../../_base_/schedules/pretrain_adamw_cosine.py'
]

data_root = 'data/unlabeled_hybrid'
img_size = 224
patch_size = 16
clip_len = 16
token_grid = (clip_len // 2, img_size // patch_size, img_size // patch_size)

model = dict(encoder=dict(arch='base', img_size=img_size, num_frames=clip_len))

# SSv2-like sources are sampled with stride 2, the others with 4 (paper appendix C.1)
sources = [
    dict(name='k710', ann_file=f'{data_root}/k710_train.txt', data_prefix=f'{data_root}/k710'),
    dict(name='ssv2', ann_file=f'{data_root}/ssv2_train.txt', data_prefix=f'{data_root}/ssv2',
         frame_interval=2),
    dict(name='ava', ann_file=f'{data_root}/ava_frames.txt', data_prefix=f'{data_root}/ava',
         filename_tmpl='image_{:06}.jpg'),
    dict(name='webvid', ann_file=f'{data_root}/webvid_250k.txt',
         data_prefix=f'{data_root}/webvid'),
]
# GroupMultiScaleCrop(224, [1, .875, .75, .66]) of the official code: fixed-position crops of
# the scaled short side, then a bilinear resize; no flip, no colour jitter.
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
    batch_size=32,
    num_workers=10,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(
        type='UnlabeledHybridDataset',
        sources=sources,
        clip_len=clip_len,
        frame_interval=4,
        num_sample=4,
        pipeline=train_pipeline))
default_hooks = dict(checkpoint=dict(interval=10, save_best=None, max_keep_ckpts=3),
                     logger=dict(interval=50))
randomness = dict(seed=0, diff_rank_seed=True)
