from .tad_losses import ctr_diou_loss_1d, sigmoid_focal_loss

__all__ = ['sigmoid_focal_loss', 'ctr_diou_loss_1d']
