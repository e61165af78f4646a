"""Fine-tuning: named parameter groups and schedules of trainability and learning rates."""
