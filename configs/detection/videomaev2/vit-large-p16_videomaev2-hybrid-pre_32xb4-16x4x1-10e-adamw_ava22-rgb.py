# VideoMAE V2 ViT-L AVA v2.2 detector: the ViT-B recipe (paper Table 12, batch
# 128 = 32 GPUs x 4) with the
# UnlabeledHybrid pre-trained ViT-L (`vit_l_hybrid_pt_1200e.pth`, `encoder.` keys).
_base_ = ['./vit-base-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py']

model = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/vit_l_hybrid_pt_1200e.pth')),
    roi_head=dict(
        bbox_head=dict(in_channels=1024)))

train_dataloader = dict(batch_size=4)
