"""Training: the LightningModule, learning-rate schedules and their scaling, class weights,
the training-speed measurement, checkpoint files (atomic writes, safe reads) and resume points."""
