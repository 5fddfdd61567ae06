"""kerascnn.training."""
