"""Batches: the loading plan (workers or threads; where decoding and augmentation run), the
data module, the resumable and threaded loaders, and the device stage."""
