# VideoMAE V2 ViT-G AVA v2.2 detector: the ViT-B recipe (paper Table 12, batch
# 128 = 64 GPUs x 2) with the K710
# post-pre-trained ViT-g (OpenGVLab/VideoMAE2 `mae-g/vit_g_hybrid_pt_1200e_k710_ft.pth`).
_base_ = ['./vit-base-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py']

model = dict(
    backbone=dict(
        arch='giant',
        with_cp=True,  # 40 blocks: activation checkpointing saves training memory
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/vit_g_hybrid_pt_1200e_k710_ft.pth')),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_stride=14),  # = patch size
        bbox_head=dict(in_channels=1408)),
    data_preprocessor=dict(pad_size_divisor=14))

train_dataloader = dict(batch_size=2)
