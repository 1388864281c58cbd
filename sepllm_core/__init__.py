"""SepLLM compressed KV cache for Hugging Face decoders (Qt-free; never imports ``app``)."""
