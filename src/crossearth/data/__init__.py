"""Datasets: class sets, palettes and label conventions."""
