"""Benchmarks for the SepLLM cache: perplexity, scaling, recall and llama.cpp; ``make bench`` runs them."""
