"""Helpers that import nothing of ours: JSON, value formats, text cleaning, log lines, stopping tasks."""
