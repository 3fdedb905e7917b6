# ViT-g/14 K710 post-pre-training (the official recipe,
# ../vit-giant-p14_videomaev2-hybrid-pre_32xb3-16x4x1-35e_kinetics-710.py)
# sharded with FSDP: see configs/_base_/strategies/fsdp_bf16.py. Optimizer, layer decay 0.9,
# schedule and the gradient clipping at global norm 5.0 (paper Table 11) are inherited; the norm
# is taken over all shards by FSDPOptimWrapper; bf16 autocast.
_base_ = [
    '../vit-giant-p14_videomaev2-hybrid-pre_32xb3-16x4x1-35e_kinetics-710.py',
    '../../../_base_/strategies/fsdp_bf16.py'
]

model = dict(backbone=dict(with_cp=False))  # FSDP checkpoints the same blocks
optim_wrapper = dict(type='FSDPOptimWrapper', dtype='bfloat16')
