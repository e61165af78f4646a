"""vidtl: transfer learning on video with pretrained 2D image backbones."""

__version__ = "0.3.0"
