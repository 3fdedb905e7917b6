# ViT-H/16 K710 post-pre-training (the official recipe,
# ../vit-huge-p16_videomaev2-hybrid-pre_32xb4-16x4x1-40e_kinetics-710.py)
# with DeepSpeed ZeRO-3, bf16: see configs/_base_/strategies/deepspeed_zero3_bf16.py.
# Optimizer, layer decay 0.8 and schedule inherited (no gradient clipping for ViT-H, paper
# Table 11); activation checkpointing per block through the backbone's with_cp.
_base_ = [
    '../vit-huge-p16_videomaev2-hybrid-pre_32xb4-16x4x1-40e_kinetics-710.py',
    '../../../_base_/strategies/deepspeed_zero3_bf16.py'
]

model = dict(backbone=dict(with_cp=True))
optim_wrapper = dict(type='DeepSpeedOptimWrapper')
