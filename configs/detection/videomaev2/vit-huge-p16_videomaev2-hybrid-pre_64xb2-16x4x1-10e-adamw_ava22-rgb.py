# VideoMAE V2 ViT-H AVA v2.2 detector: the ViT-B recipe (paper Table 12, batch
# 128 = 64 GPUs x 2) with the
# UnlabeledHybrid pre-trained ViT-H (`vit_h_hybrid_pt_1200e.pth`, `encoder.` keys).
_base_ = ['./vit-base-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py']

model = dict(
    backbone=dict(
        arch='huge',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/vit_h_hybrid_pt_1200e.pth')),
    roi_head=dict(
        bbox_head=dict(in_channels=1280)))

train_dataloader = dict(batch_size=2)
