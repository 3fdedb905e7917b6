# Logit distillation of VideoMAE V2-g (K710 fine-tuned teacher) into ViT-B on K710 (paper
# appendix E, Table 16): KL(teacher || student) on logits, student initialised from the K710
# post-pre-trained ViT-B, AdamW (0.9, 0.999) base lr 1e-3 per 256 at batch 1024, wd 0.05,
# 5 warm-up + cosine to 100 epochs, drop path 0.1, no head dropout, layer decay 0.75,
# mixup 0.8 / cutmix 1.0, flip. The official distillation code was never released
# (OpenGVLab/VideoMAEv2#61); augmentation follows the K710 fine-tuning pipeline.
# The saved checkpoints hold only `student.*`; load the student elsewhere with
# init_cfg=dict(type='Pretrained', checkpoint=..., prefix='student.').
_base_ = [
    '../../_base_/datasets/recognition_kinetics710.py',
    '../../_base_/schedules/recognition_adamw_layer_decay.py',
    '../../_base_/default_runtime.py'
]

num_classes = 710
num_gpus = 64
batch_size = 16
base_lr = 1e-3  # per 256 videos
max_epochs = 100
warmup_epochs = 5
student_checkpoint = 'checkpoints/vit_b_hybrid_pt_800e_k710_ft.pth'
teacher_checkpoint = 'checkpoints/vit_g_hybrid_pt_1200e_k710_ft.pth'

data_preprocessor = dict(
    type='ActionDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    format_shape='NCTHW',
    blending=dict(
        type='RandomBatchAugment',
        augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
            dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
        ]))
model = dict(
    type='VideoMAEv2Distiller',
    student=dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch='base', drop_path_rate=0.1,
                      init_cfg=dict(type='Pretrained', checkpoint=student_checkpoint)),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes, in_channels=768,
                      dropout_ratio=0., average_clips='prob'),
        data_preprocessor=data_preprocessor),
    teacher=dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch='giant'),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes, in_channels=1408,
                      average_clips='prob'),
        data_preprocessor=data_preprocessor),
    teacher_checkpoint=teacher_checkpoint,
    temperature=1.0,
    kl_weight=1.0,
    ce_weight=0.0)

train_dataloader = dict(batch_size=batch_size)
optim_wrapper = dict(
    optimizer=dict(lr=base_lr * num_gpus * batch_size / 256, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=0.75, num_layers=12, backbone_prefix='student.backbone.'))
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=5, save_best='acc/top1', rule='greater'))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-3,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * batch_size)
