# VideoMAE V2 ViT-g/14 recognizer (official fine-tune model): the ViT-B/16 recognizer
# (videomaev2_vit_base.py: mean-pooled tokens -> fc_norm -> dropout -> linear, weights x
# init_scale 0.001) with the giant backbone and its width. Recipes set num_classes, drop path,
# head dropout and the mixup/cutmix blending.
_base_ = ['./videomaev2_vit_base.py']

model = dict(backbone=dict(arch='giant'), cls_head=dict(in_channels=1408))
