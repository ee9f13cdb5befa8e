"""Evaluation metrics. ``matching``: cross-modal matching, verification and retrieval (Chapter 2)."""
