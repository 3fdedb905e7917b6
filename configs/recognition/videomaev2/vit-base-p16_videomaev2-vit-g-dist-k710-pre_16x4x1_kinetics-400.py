# Distilled VideoMAE V2 ViT-B, student of the K710 ViT-g (released as
# distill/vit_b_k710_dl_from_giant.pth),
# evaluated on Kinetics-400 through the K710 -> K400 head map, 16x5x3 views.
# Reported top-1 / top-5: 86.6 / 97.3.
#   python tools/convert_checkpoint.py vit_b_k710_dl_from_giant.pth \
#       checkpoints/vit_b_k710_dl_from_giant_k710to400.pth --label-map k710to400
#   python tools/test.py THIS_CONFIG checkpoints/vit_b_k710_dl_from_giant_k710to400.pth
# The distillation recipe itself was never released; training settings below are the ViT-B K400
# fine-tuning recipe, for further K400 fine-tuning of the distilled model.
_base_ = ['vit-base-p16_videomaev2-hybrid-pre_32xb16-16x4x1-90e_kinetics-400.py']

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.1, init_cfg=None),
    cls_head=dict(in_channels=768))

load_from = 'checkpoints/vit_b_k710_dl_from_giant_k710to400.pth'
