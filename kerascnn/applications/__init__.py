"""kerascnn.applications."""
