# HMDB51 split 1: official VideoMAE V2 fine-tuning data pipeline (the Kinetics-400 one) with
# sampling rate 2 (official vit_g_k710_it_hmdb51_ft.sh) instead of 4.
# Train: 2 repeated augmentations per decoded video (RepeatAugDataset, official num_sample 2),
# clip-consistent RandAugment rand-m7-n4-mstd0.5-inc1, RandomResizedCrop (area 0.08-1, ratio
# 3/4-4/3) -> 224 bicubic, flip, random erasing 0.25. Val: one centre crop. Test: short side
# 224, 5 clips x 3 crops, softmax per view then average (head average_clips='prob').
_base_ = ['./recognition_kinetics400.py']

data_root = 'data/hmdb51'
ann_file_train = 'data/hmdb51/hmdb51_train_split_1_videos.txt'
ann_file_val = 'data/hmdb51/hmdb51_val_split_1_videos.txt'
ann_file_test = 'data/hmdb51/hmdb51_val_split_1_videos.txt'

# the Kinetics pipelines with frame_interval 2 in SampleFrames (lists replace, not merge)
train_pipeline = [dict(t, frame_interval=2) if t['type'] == 'SampleFrames' else t
                  for t in _base_.train_pipeline]
val_pipeline = [dict(t, frame_interval=2) if t['type'] == 'SampleFrames' else t
                for t in _base_.val_pipeline]
test_pipeline = [dict(t, frame_interval=2) if t['type'] == 'SampleFrames' else t
                 for t in _base_.test_pipeline]

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video='data/hmdb51/videos'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video='data/hmdb51/videos'),
                 pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video='data/hmdb51/videos'),
                 pipeline=test_pipeline))
