"""Summarization pipeline: prompts, single-pass / rolling-notes / map-reduce / truncate modes."""
