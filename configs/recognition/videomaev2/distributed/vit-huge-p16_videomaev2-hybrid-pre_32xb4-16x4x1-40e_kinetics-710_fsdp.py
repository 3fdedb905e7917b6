# ViT-H/16 K710 post-pre-training (the official recipe,
# ../vit-huge-p16_videomaev2-hybrid-pre_32xb4-16x4x1-40e_kinetics-710.py)
# sharded with FSDP: see configs/_base_/strategies/fsdp_bf16.py. Optimizer, layer decay 0.8 and
# schedule are inherited unchanged (no gradient clipping for ViT-H, paper Table 11); bf16 autocast.
_base_ = [
    '../vit-huge-p16_videomaev2-hybrid-pre_32xb4-16x4x1-40e_kinetics-710.py',
    '../../../_base_/strategies/fsdp_bf16.py'
]

model = dict(backbone=dict(with_cp=False))  # FSDP checkpoints the same blocks
optim_wrapper = dict(type='FSDPOptimWrapper', dtype='bfloat16')
