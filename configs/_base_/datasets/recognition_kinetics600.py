# Kinetics-600: official VideoMAE V2 fine-tuning data pipeline (the Kinetics-400 one).
# Class indices must follow vmae2_mm/data/label_map_k600.txt to reuse K710 heads.
_base_ = ['./recognition_kinetics400.py']

data_root = 'data/kinetics600'
ann_file_train = 'data/kinetics600/kinetics600_train_list_videos.txt'
ann_file_val = 'data/kinetics600/kinetics600_val_list_videos.txt'
ann_file_test = 'data/kinetics600/kinetics600_val_list_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video='data/kinetics600/videos_train')))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video='data/kinetics600/videos_val')))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video='data/kinetics600/videos_val')))
