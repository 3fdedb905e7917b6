# ViT-g/14 dual-masking pre-training (the official ViT-g recipe,
# vit-giant-p14_videomaev2-tube90-cell50_64xb32-16x4x1-300e_unlabeled-hybrid.py)
# with DeepSpeed ZeRO-3, bf16: see configs/_base_/strategies/deepspeed_zero3_bf16.py.
# Optimizer as the recipe (AdamW 0.9/0.95, lr 6e-4 per 256, wd 0.05 except
# 1-D/bias/norm/mask_token); the recipe's gradient clipping (global norm 0.02) is DeepSpeed's
# gradient_clipping. DeepSpeed casts the whole model to bf16, so the decoder cannot stay in fp32
# (fp32_decoder=False, as the released code). Activation checkpointing: the encoder's with_cp.
_base_ = [
    '../vit-giant-p14_videomaev2-tube90-cell50_64xb32-16x4x1-300e_unlabeled-hybrid.py',
    '../../../_base_/strategies/deepspeed_zero3_bf16.py'
]

model = dict(fp32_decoder=False)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0., bias_decay_mult=0., norm_decay_mult=0.,
                       custom_keys={'mask_token': dict(decay_mult=0.)}))
strategy = dict(gradient_clipping=0.02)
