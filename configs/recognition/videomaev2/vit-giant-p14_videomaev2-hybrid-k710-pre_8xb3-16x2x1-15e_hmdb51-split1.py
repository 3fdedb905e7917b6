# VideoMAE V2 ViT-g/14 fine-tuning on HMDB51, as the official
# scripts/finetune/vit_g_k710_it_hmdb51_ft.sh: 8 GPUs x 3 videos (x2 repeated augmentation),
# base lr 0.0005 per 256 videos, layer decay 0.9, wd 0.05, drop path 0.35, head dropout 0.5,
# 15 epochs (5 warm-up).
# = the UCF101 recipe with the HMDB51 data (sampling rate 2), a 51-way head, half the lr and
# 15 epochs; the lr and the schedule are re-derived here because mmengine evaluates a base's
# expressions with the base's own values.
_base_ = ['./vit-giant-p14_videomaev2-hybrid-k710-pre_8xb3-16x4x1-50e_ucf101-split1.py']

num_classes = 51
base_lr = 0.0005  # official --lr, per 256 videos (repeats not counted)
max_epochs = 15
num_gpus, batch_size = _base_.num_gpus, _base_.batch_size
warmup_epochs, warmup_lr, min_lr = _base_.warmup_epochs, _base_.warmup_lr, _base_.min_lr

model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(
        blending=dict(augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
            dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
        ])))

# configs/_base_/datasets/recognition_hmdb51.py's data and frame interval
data_root = 'data/hmdb51'
ann_file_train = f'{data_root}/hmdb51_train_split_1_videos.txt'
ann_file_val = f'{data_root}/hmdb51_val_split_1_videos.txt'
ann_file_test = ann_file_val
train_pipeline = [dict(t, frame_interval=2) if t['type'] == 'SampleFrames' else t
                  for t in _base_.train_pipeline]
val_pipeline = [dict(t, frame_interval=2) if t['type'] == 'SampleFrames' else t
                for t in _base_.val_pipeline]
test_pipeline = [dict(t, frame_interval=2) if t['type'] == 'SampleFrames' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(ann_file=ann_file_train, pipeline=train_pipeline,
                                     data_prefix=dict(video=f'{data_root}/videos')))
val_dataloader = dict(dataset=dict(ann_file=ann_file_val, pipeline=val_pipeline,
                                   data_prefix=dict(video=f'{data_root}/videos')))
test_dataloader = dict(dataset=dict(ann_file=ann_file_test, pipeline=test_pipeline,
                                    data_prefix=dict(video=f'{data_root}/videos')))

# lr scaled linearly with the total batch, as official: 0.0005 x 24 / 256 = 4.688e-05
optim_wrapper = dict(optimizer=dict(lr=base_lr * num_gpus * batch_size / 256))
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=min_lr / base_lr, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True)
]
