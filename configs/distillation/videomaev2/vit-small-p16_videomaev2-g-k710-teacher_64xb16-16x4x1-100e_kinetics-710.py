# Logit distillation of VideoMAE V2-g into ViT-S on K710 (same recipe as the ViT-B student;
# the released ViT-S student, vit_s_k710_dl_from_giant.pth, was made this way).
_base_ = ['./vit-base-p16_videomaev2-g-k710-teacher_64xb16-16x4x1-100e_kinetics-710.py']

model = dict(
    student=dict(
        backbone=dict(arch='small',
                      init_cfg=dict(checkpoint='checkpoints/vit_s_k710_post_pretrain.pth')),
        cls_head=dict(in_channels=384)))
