# Fine-tune VideoMAE V2 ViT-B/16 on your own videos (docs/custom_dataset.md).
# Copy this file next to itself, edit ONLY the block below, then
#   python tools/train.py configs/recognition/videomaev2/custom/MY_COPY.py
#   python tools/test.py configs/recognition/videomaev2/custom/MY_COPY.py \
#       work_dirs/MY_COPY/best_acc_top1_epoch_N.pth
# Everything after the block is derived from it.
# Start: the released K710-trained ViT-B (distill/vit_b_k710_dl_from_giant.pth of the official
# model zoo, 81.5 top-1 on K710). Its backbone and fc_norm are loaded; its 710-way classifier
# is dropped on purpose and a new num_classes-way head is initialised (see `pretrained` below).
# Recipe: the ViT-B Kinetics recipe (official VideoMAE V2 fine-tuning: RandAugment, random
# resized crop, random erasing, mixup 0.8 / cutmix 1.0, label smoothing 0.1, repeated
# augmentation 2, AdamW with layer decay 0.75, warm-up + cosine), retargeted by the block.
_base_ = [
    '../../../_base_/models/videomaev2_vit_base.py',
    '../../../_base_/datasets/recognition_kinetics400.py',
    '../../../_base_/schedules/recognition_adamw_layer_decay.py',
    '../../../_base_/default_runtime.py'
]

# =============================== edit this block ===============================
data_root = 'data/my_videos'  # list paths are relative to this folder
ann_file_train = 'data/my_videos/train.txt'  # lines "relative/path.mp4 label", label 0..K-1
ann_file_val = 'data/my_videos/val.txt'
ann_file_test = 'data/my_videos/test.txt'
num_classes = 10
clip_len = 16  # frames per clip (the checkpoint was trained on 16)
frame_interval = 4  # stride between sampled frames (clip spans clip_len x frame_interval)
num_clips = 5  # test: clips per video, each with 3 crops, softmax-averaged
input_size = 224  # crop side in pixels (multiple of 16); the position table follows it
hflip = True  # False when mirroring changes the label (e.g. "swipe left" / "swipe right")
max_epochs = 30
warmup_epochs = 5
batch_size = 8  # videos per GPU; each gives 2 differently augmented clips
num_gpus = 1  # GPUs you train on
total_batch = 64  # videos per optimizer step: gradient accumulation makes up the rest
base_lr = 1e-3  # per 256 videos, scaled linearly to total_batch
linear_probe = False  # True: freeze the backbone (lr 0, no weight decay), train the head only
pretrained = 'checkpoints/vit_b_k710_dl_from_giant.pth'
# ================================================================================

if not isinstance(num_classes, int) or num_classes < 2:
    raise ValueError(f'num_classes must be an int >= 2, got {num_classes!r}')
if input_size % 16:
    raise ValueError(f'input_size must be a multiple of the patch size 16, got {input_size}')
if clip_len % 2:
    raise ValueError(f'clip_len must be even (2-frame tubelets), got {clip_len}')
if total_batch % (num_gpus * batch_size):
    raise ValueError(f'total_batch={total_batch} must be a multiple of num_gpus x batch_size '
                     f'= {num_gpus * batch_size}')
if not 0 <= warmup_epochs < max_epochs:
    raise ValueError(f'warmup_epochs must be in [0, max_epochs={max_epochs}), got '
                     f'{warmup_epochs}')
accumulative_counts = total_batch // (num_gpus * batch_size)
warmup_lr, min_lr = 1e-8, 1e-6  # official defaults, scaled with the batch like lr


def _retarget(pipeline, clips):
    """The Kinetics pipeline at clip_len / frame_interval / input_size, `clips` clips."""
    out = []
    for t in pipeline:
        t = dict(t)
        if t['type'] == 'Flip' and not hflip:
            continue
        if t['type'] == 'SampleFrames':
            t.update(clip_len=clip_len, frame_interval=frame_interval, num_clips=clips)
        elif t['type'] == 'Resize':
            t['scale'] = (-1, input_size) if t['scale'][0] == -1 else (input_size, input_size)
        elif t['type'] in ('CenterCrop', 'ThreeCrop'):
            t['crop_size'] = input_size
        out.append(t)
    return out


train_pipeline = _retarget(_base_.train_pipeline, 1)
val_pipeline = _retarget(_base_.val_pipeline, 1)
test_pipeline = _retarget(_base_.test_pipeline, num_clips)
del _retarget  # a function is not a config value

model = dict(
    backbone=dict(
        img_size=input_size,
        num_frames=clip_len,
        # a frozen backbone gains nothing from stochastic depth
        drop_path_rate=0.0 if linear_probe else 0.1,
        # Backbone + fc_norm from the checkpoint (official / HF / mmaction2 layout). Its
        # classifier is listed as dropped in the log and NOT loaded: the head below is new,
        # with num_classes rows and the official init. load_from is not used for this, since
        # it loads strictly and a 710-row head cannot fill a num_classes-row one.
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    cls_head=dict(num_classes=num_classes, dropout_ratio=0.0),
    data_preprocessor=dict(
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
                dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
            ])))
load_from = None

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root),
                 pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video=data_root),
                 pipeline=test_pipeline))

lr = base_lr * total_batch / 256
if linear_probe:
    # mmengine's own constructor: every backbone parameter gets lr 0 and weight decay 0, so
    # AdamW leaves it exactly unchanged; only the head trains
    optim_wrapper = dict(
        accumulative_counts=accumulative_counts,
        optimizer=dict(lr=lr, weight_decay=0.05),
        constructor='DefaultOptimWrapperConstructor',
        paramwise_cfg=dict(_delete_=True, bias_decay_mult=0.0,
                           custom_keys={'backbone.': dict(lr_mult=0.0, decay_mult=0.0)}))
else:
    optim_wrapper = dict(
        accumulative_counts=accumulative_counts,
        optimizer=dict(lr=lr, weight_decay=0.05),
        paramwise_cfg=dict(layer_decay=0.75))

train_cfg = dict(max_epochs=max_epochs, val_begin=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, save_best='acc/top1', rule='greater'))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=min_lr / base_lr, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True)
]
if warmup_epochs:
    param_scheduler.insert(0, dict(type='LinearLR', start_factor=warmup_lr / base_lr,
                                   by_epoch=True, begin=0, end=warmup_epochs,
                                   convert_to_iter_based=True))
# Training on another number of GPUs with the same block: `--auto-scale-lr` rescales lr by
# (GPUs x batch_size) / (num_gpus x batch_size); accumulation stays accumulative_counts.
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * batch_size)
