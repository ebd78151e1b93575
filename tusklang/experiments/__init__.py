"""Experiment statistics and winner detection (see docs/statistics.md)."""
