"""vidtl: transfer learning on video with pretrained 2D image backbones.

``vidtl.load(checkpoint)`` gives a trained model to use in Python
(:mod:`vidtl.inference.video_model`); it is imported on first use, so ``import vidtl`` stays
light.
"""

from typing import Any

from vidtl.core.version import __version__

API = ("load", "VideoModel", "Prediction")
__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from vidtl.inference import video_model

        return getattr(video_model, name)
    raise AttributeError(f"module 'vidtl' has no attribute {name!r}")
