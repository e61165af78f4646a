"""Frames left as JPEG bytes (``data.decode_on=device``): the frame store read without decoding,
so that the training device decodes them (nvJPEG on a GPU)."""

from __future__ import annotations

import numpy as np
import torch

from vidtl.data.frames.frame_store import FrameStoreReader

EncodedClip = list[torch.Tensor]  # the JPEG bytes of each frame of one clip


class EncodedFrameStoreReader(FrameStoreReader):
    """A frame store reader whose ``get_frames`` returns the frames' JPEG bytes, undecoded."""

    def get_frames(self, indices: np.ndarray) -> EncodedClip:  # type: ignore[override]
        stored = self.stored_index(np.asarray(indices, dtype=np.int64))
        unique, inverse = np.unique(stored, return_inverse=True)
        data = self.encoded_frames(unique)
        return self.reported(indices, [data[i] for i in inverse.reshape(-1).tolist()])
