"""SepSum: offline summaries of long documents through a SepLLM compressed KV cache."""

__version__ = "0.1.0"
