"""Evaluation: benchmark loaders (``datasets``), (batched) runs and result files
(``runner``), metrics, the VOT protocol, comparisons and ``clnet-eval``."""
