"""Training: losses, data pipeline and the Lightning module."""
