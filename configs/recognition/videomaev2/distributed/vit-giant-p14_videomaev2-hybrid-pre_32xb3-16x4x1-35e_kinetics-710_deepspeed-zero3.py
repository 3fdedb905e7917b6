# ViT-g/14 K710 post-pre-training (the official recipe,
# ../vit-giant-p14_videomaev2-hybrid-pre_32xb3-16x4x1-35e_kinetics-710.py)
# with DeepSpeed ZeRO-3, bf16: see configs/_base_/strategies/deepspeed_zero3_bf16.py.
# The optimizer restates the recipe's (AdamW 0.9/0.999, eps 1e-8, lr 1e-3 x 96 / 256, wd 0.1,
# layer decay 0.9); its gradient clipping (global norm 5.0, paper Table 11) is DeepSpeed's
# gradient_clipping. Activation checkpointing per block through the backbone's with_cp.
_base_ = [
    '../vit-giant-p14_videomaev2-hybrid-pre_32xb3-16x4x1-35e_kinetics-710.py',
    '../../../_base_/strategies/deepspeed_zero3_bf16.py'
]

model = dict(backbone=dict(with_cp=True))
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3 * 32 * 3 / 256, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.1),
    constructor='VideoMAEv2LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay=0.9))
strategy = dict(gradient_clipping=5.0)
