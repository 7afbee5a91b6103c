"""Attacks as a hostile client would make them, each asserting that nothing was written and nothing changed."""
