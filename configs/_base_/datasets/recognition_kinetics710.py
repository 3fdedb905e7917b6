# Kinetics-710 (LabeledHybrid: K400+K600+K700, val sets removed): official VideoMAE V2
# fine-tuning data pipeline (the Kinetics-400 one).
# One list over all K710 clips, labels = line index in vmae2_mm/data/label_map_k710.txt.
_base_ = ['./recognition_kinetics400.py']

data_root = 'data/kinetics710'
ann_file_train = 'data/kinetics710/kinetics710_train_list_videos.txt'
ann_file_val = 'data/kinetics710/kinetics710_val_list_videos.txt'
ann_file_test = 'data/kinetics710/kinetics710_val_list_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video='data/kinetics710/videos')))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video='data/kinetics710/videos')))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video='data/kinetics710/videos')))
