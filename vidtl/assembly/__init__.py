"""The composition root: configs in, typed objects out.

Every entry point (and benchmark) builds its data module, clip pipeline, classifier and
LightningModule here, so each is assembled once, the same way. Below it, classes take plain
typed objects and know nothing of configs.
"""
