"""kerascnn.data."""
