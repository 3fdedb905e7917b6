# Logit distillation at toy scale (CPU, seconds): the tiny ViT recognizer of the README demo
# (configs/recognition/videomaev2/vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py,
# 64 wide, 2 blocks) teaches a half-width student (32 wide, 2 blocks) on the same generated
# motion clips, with the KL objective of the K710 distillation configs (pure KD, T = 1).
# Train the teacher first (its epoch_20.pth is the default below), then:
#   python tools/train.py configs/distillation/videomaev2/<this file> \
#       --cfg-options model.teacher_checkpoint=<teacher epoch_20.pth>
# The checkpoints hold only `student.*`: `tools/convert_checkpoint.py EPOCH.pth STUDENT.pth` gives
# a plain recognizer checkpoint (the recognition config above with embed_dims=32) for
# tools/test.py.
_base_ = ['../../_base_/demo_recognition_synthetic_motion_32px.py']

teacher_checkpoint = ('work_dirs/vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px/'
                      'epoch_20.pth')
_preprocessor = dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                     std=[58.395, 57.12, 57.375], format_shape='NCTHW')


def _recognizer(width):
    """A tiny Recognizer3D: 2 blocks of ``width`` channels, 8x8 patches, 32x32 x 8 frames."""
    return dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', img_size=32, num_frames=8, drop_path_rate=0.0,
                      pos_embed_grid_from=None, out_type='pooled',
                      arch=dict(embed_dims=width, depth=2, num_heads=2, mlp_ratio=2,
                                patch_size=8)),
        cls_head=dict(type='VideoMAEv2Head', num_classes=4, in_channels=width, init_scale=0.001,
                      average_clips='prob'),
        data_preprocessor=_preprocessor)


model = dict(
    _delete_=True,
    type='VideoMAEv2Distiller',
    student=_recognizer(32),
    teacher=_recognizer(64),  # = the tiny recognition config's model
    teacher_checkpoint=teacher_checkpoint,
    temperature=1.0,
    kl_weight=1.0,
    ce_weight=0.0)

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True)
]
