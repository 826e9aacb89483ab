"""Kernels and per-instance forwards for one Gemma 4 model instance (never patched process-wide)."""
