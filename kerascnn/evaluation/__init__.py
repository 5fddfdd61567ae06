"""kerascnn.evaluation."""
