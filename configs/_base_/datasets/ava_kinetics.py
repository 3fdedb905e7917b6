# AVA-Kinetics (mmaction2 layout: tools/data/ava_kinetics): AVA v2.2 train + Kinetics clips
# "<ytid>_<start:06d>_<end:06d>" merged into the train CSV / proposals; validation on AVA v2.2
# val, as in mmaction2's recipe and the paper's AVA-Kinetics numbers on the AVA part.
_base_ = ['./ava_v2.2.py']

dataset_type = 'AVAKineticsKeyframeDataset'
data_root = 'data/ava_kinetics/rawframes'
anno_root = 'data/ava_kinetics/annotations'

ann_file_train = f'{anno_root}/ava_train_v2.2.csv'
ann_file_val = f'{anno_root}/ava_val_v2.2.csv'
exclude_file_train = f'{anno_root}/ava_train_excluded_timestamps_v2.2.csv'
exclude_file_val = f'{anno_root}/ava_val_excluded_timestamps_v2.2.csv'
label_file = f'{anno_root}/ava_action_list_v2.2_for_activitynet_2019.pbtxt'
proposal_file_train = f'{anno_root}/ava_dense_proposals_train.FAIR.recall_93.9.pkl'
proposal_file_val = f'{anno_root}/ava_dense_proposals_val.FAIR.recall_93.9.pkl'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        exclude_file=exclude_file_train,
        label_file=label_file,
        proposal_file=proposal_file_train,
        data_prefix=dict(img=data_root)))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        exclude_file=exclude_file_val,
        label_file=label_file,
        proposal_file=proposal_file_val,
        data_prefix=dict(img=data_root)))
test_dataloader = val_dataloader

val_evaluator = dict(
    ann_file=ann_file_val, label_file=label_file, exclude_file=exclude_file_val)
test_evaluator = val_evaluator
