"""The way a clip travels, one subpackage per stage:

``annotations`` (files -> records) -> ``frames`` (record -> decoded frames) -> ``clips``
(sampler + source + transforms = one clip) -> ``loading`` (batches, the device stage); the
offline ``tools`` (prepare, check, synthetic data, throughput) sit apart.
"""
