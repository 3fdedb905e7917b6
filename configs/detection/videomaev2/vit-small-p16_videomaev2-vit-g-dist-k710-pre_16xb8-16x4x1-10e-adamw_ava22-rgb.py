# VideoMAE V2 ViT-S AVA v2.2 detector: the ViT-B recipe (paper Table 12, batch
# 128 = 16 GPUs x 8) with the
# K710-distilled ViT-S (OpenGVLab/VideoMAE2 `distill/vit_s_k710_dl_from_giant.pth`).
_base_ = ['./vit-base-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py']

model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/vit_s_k710_dl_from_giant.pth')),
    roi_head=dict(
        bbox_head=dict(in_channels=384)))

train_dataloader = dict(batch_size=8)
