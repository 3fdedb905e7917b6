# VideoMAE V2 dual-masking pretrainer: ViT-B/16 encoder at 16x224x224, official 4-block decoder
# (width/heads per encoder size, the encoder's MLP ratio), per-cube normalised pixel target.
# Sizes override `model.encoder.arch`; the decoder follows the size automatically.
model = dict(
    type='VideoMAEv2Pretrainer',
    encoder=dict(arch='base', img_size=224, num_frames=16, tubelet_size=2, drop_path_rate=0.,
                 with_cp=False),
    decoder=dict(depth=4),
    normalize_target=True,
    # paper: encoder under fp16 autocast, decoder in fp32 (the released code autocasts both)
    fp32_decoder=True,
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
