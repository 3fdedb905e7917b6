from .vit_videomaev2 import ARCH_SETTINGS, VideoMAEv2ViT, resolve_arch

__all__ = ['VideoMAEv2ViT', 'ARCH_SETTINGS', 'resolve_arch']
