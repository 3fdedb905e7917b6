# VideoMAE V2 ViT-g/14 fine-tuning on Something-Something V1 (paper Table 6(d): top-1 / top-5
# 68.7 / 91.9, 2x3 views). No SSv1 script or checkpoint was released; the settings are those of the
# SSv2 fine-tuning, official scripts/finetune/vit_g_ssv2_ft.sh (paper Table 9 has one "Sth-Sth"
# column for both; same 174 classes and TSN-style 16-segment sampling), on SSv1's JPEG frame
# folders (configs/_base_/datasets/recognition_sthv1.py: RawframeDataset, no repeated
# augmentation). Only the dataset differs from the SSv2 recipe
# vit-giant-p14_videomaev2-hybrid-pre_32xb3-u16-20e_sthv2.py.
_base_ = [
    '../../_base_/models/videomaev2_vit_giant.py',
    '../../_base_/datasets/recognition_sthv1.py',
    '../../_base_/schedules/recognition_adamw_layer_decay.py',
    '../../_base_/default_runtime.py'
]

num_classes = 174
num_gpus = 32
batch_size = 3  # videos per GPU (one clip each, see recognition_sthv1.py)
base_lr = 0.0003  # official SSv2 --lr, per 256 videos
max_epochs = 20
warmup_epochs = 5
warmup_lr, min_lr = 1e-8, 1e-6  # official defaults, scaled with the batch like lr

# Initialisation: the official pre-trained (or K710 post-pre-trained) weights, any layout
# (official / HF transformers / mmaction2), read by the backbone loader.
pretrained = 'checkpoints/vit_g_hybrid_pt_1200e.pth'

model = dict(
    backbone=dict(
        drop_path_rate=0.25,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    cls_head=dict(num_classes=num_classes, dropout_ratio=0.0),
    # official mixup 0.8 / cutmix 1.0, probability 1, switch 0.5 (one of the two per batch)
    data_preprocessor=dict(
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
                dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
            ])))

train_dataloader = dict(batch_size=batch_size)

# lr scaled linearly with the total batch, as official: 0.0003 x 96 / 256 = 0.0001125
optim_wrapper = dict(
    optimizer=dict(lr=base_lr * num_gpus * batch_size / 256, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=0.9))
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=5, save_best='acc/top1', rule='greater'))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=min_lr / base_lr, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True)
]
# with fewer GPUs, pass --auto-scale-lr to rescale lr from this total batch
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * batch_size)
