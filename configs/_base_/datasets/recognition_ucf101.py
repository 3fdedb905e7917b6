# UCF101 split 1: official VideoMAE V2 fine-tuning data pipeline (the Kinetics-400 one).
_base_ = ['./recognition_kinetics400.py']

data_root = 'data/ucf101'
ann_file_train = 'data/ucf101/ucf101_train_split_1_videos.txt'
ann_file_val = 'data/ucf101/ucf101_val_split_1_videos.txt'
ann_file_test = 'data/ucf101/ucf101_val_split_1_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video='data/ucf101/videos')))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video='data/ucf101/videos')))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video='data/ucf101/videos')))
