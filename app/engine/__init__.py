"""Model engine: the embedded default model, imported models, loading, devices and memory."""
