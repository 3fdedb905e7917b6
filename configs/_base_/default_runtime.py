# Runtime shared by every vmae2_mm config (mmaction2 conventions).
default_scope = 'mmaction'
custom_imports = dict(imports=['vmae2_mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, save_best='auto', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    # random streams per (seed, epoch): `--resume` from an epoch checkpoint continues exactly
    rng_state=dict(type='RNGStateHook'),
    # load_from also accepts official, HF and mmaction2 VideoMAE files (head rows: label_map)
    foreign_checkpoint=dict(type='ForeignCheckpointHook'),
    # a NaN/inf loss stops the run before the optimizer step; no non-finite checkpoint is written
    non_finite=dict(type='NonFiniteCheckHook'),
    # totals bad (skipped) samples over all dataloader workers per epoch; stops above 10 %
    bad_samples=dict(type='BadSampleHook'),
    # labels within the head's num_classes, TAD feature width == model in_channels, before step 1
    dataset_check=dict(type='DatasetModelCheckHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
