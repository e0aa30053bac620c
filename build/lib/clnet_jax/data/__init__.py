"""Datasets: the synthetic distractor benchmark and readers of the published layouts."""
