# ActionFormer on VideoMAE V2-g FineAction features, ANet-style (tad.md 1.2 / 5.2): class-
# agnostic proposals, features resized to 192, windows (7,7,7,7,7,global), 256 channels,
# absolute PE, lr 1e-3, batch 16, 10 + 5 warm-up epochs, label smoothing 0.1, loss weight 2,
# class-agnostic Soft-NMS (sigma 0.75) with segment voting 0.9, 100 segments.
#
# NOT reproducible as such: the paper's 18.2 (OpenTAD 19.62) fuses these proposals with
# external video-level classifier scores (top-2 classes, score = sqrt(cls * proposal), from
# `new_swinB_1x1x256_views2x3_max_label_avg_prob.json`), which vmae2_mm does not ship or
# implement; this config reports class-agnostic proposal mAP at tIoU 0.5:0.05:0.95.
_base_ = [
    '../_base_/models/actionformer.py', '../_base_/datasets/tad_fineaction.py',
    '../_base_/schedules/tad_adamw_cosine.py', '../_base_/default_runtime.py'
]
max_seq_len = 192
model = dict(
    data_preprocessor=dict(max_seq_len=max_seq_len),
    backbone=dict(in_channels=1408, embed_dims=256, window_size=(7, 7, 7, 7, 7, -1),
                  max_seq_len=max_seq_len, use_abs_pe=True),
    neck=dict(in_channels=[256] * 6, out_channels=256),
    head=dict(
        num_classes=1, in_channels=256, feat_channels=256, loss_weight=2.0,
        label_smoothing=0.1, init_loss_norm=200,
        test_cfg=dict(pre_nms_thresh=0.001, pre_nms_topk=2000, duration_thresh=0.001,
                      nms=dict(sigma=0.75, min_score=0.001, max_seg_num=100,
                               multiclass=False, voting_thresh=0.9))))

warmup_epochs = 5
epochs = 10
max_epochs = warmup_epochs + epochs
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-8, end_factor=1.0, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=epochs, eta_min=1e-8, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_begin=max_epochs)
default_hooks = dict(checkpoint=dict(interval=5, save_best=None, max_keep_ckpts=2))
