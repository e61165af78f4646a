"""Training: the LightningModule, learning-rate schedules and the training-speed measurement."""
