"""Benchmarks for the SepLLM cache: perplexity, scaling, recall and llama.cpp; ``make bench`` runs them."""

import os

STARTUP_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY", "(unset)")
"""The wait policy OpenMP reads when torch loads: the environment as the benchmark started, before
importing ``app`` sets its PASSIVE default (``python -m benchmarks.X`` imports this package first)."""
