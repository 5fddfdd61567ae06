"""kerascnn.layers."""
