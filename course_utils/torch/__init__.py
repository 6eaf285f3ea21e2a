"""PyTorch side of the course: data, models, losses, metrics, training."""
