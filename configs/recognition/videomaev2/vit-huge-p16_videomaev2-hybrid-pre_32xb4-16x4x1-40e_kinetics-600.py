# VideoMAE V2 ViT-H/16 fine-tuning on Kinetics-600, as the official
# scripts/finetune/vit_h_k600_ft.sh: 32 GPUs x 4 videos (x2 repeated augmentation),
# base lr 0.001 per 256 videos, layer decay 0.8, wd 0.05, drop path 0.2, head dropout 0.5,
# 40 epochs (5 warm-up).
_base_ = [
    '../../_base_/models/videomaev2_vit_huge.py',
    '../../_base_/datasets/recognition_kinetics600.py',
    '../../_base_/schedules/recognition_adamw_layer_decay.py',
    '../../_base_/default_runtime.py'
]

num_classes = 600
num_gpus = 32
batch_size = 4  # videos per GPU; RepeatAugDataset makes 2 clips of each
base_lr = 0.001  # official --lr, per 256 videos (repeats not counted)
max_epochs = 40
warmup_epochs = 5
warmup_lr, min_lr = 1e-8, 1e-6  # official defaults, scaled with the batch like lr

# Initialisation: the official pre-trained (or K710 post-pre-trained) weights, any layout
# (official / HF transformers / mmaction2), read by the backbone loader.
pretrained = 'checkpoints/vit_h_hybrid_pt_1200e.pth'

model = dict(
    backbone=dict(
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    cls_head=dict(num_classes=num_classes, dropout_ratio=0.5),
    # official mixup 0.8 / cutmix 1.0, probability 1, switch 0.5 (one of the two per batch)
    data_preprocessor=dict(
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
                dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
            ])))

train_dataloader = dict(batch_size=batch_size)

# lr scaled linearly with the total batch, as official: 0.001 x 128 / 256 = 0.0005
optim_wrapper = dict(
    optimizer=dict(lr=base_lr * num_gpus * batch_size / 256, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=0.8))
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
