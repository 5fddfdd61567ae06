"""kerascnn.export."""
