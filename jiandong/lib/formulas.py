"""Text a spreadsheet would run as a formula (OWASP "CSV injection"): the console's exports guard it with a
leading apostrophe, and its imports take that apostrophe off again, so an exported sheet imports as it was."""

from __future__ import annotations

# Excel runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guarded(text: str) -> str:
    """`text` as an export writes it: with an apostrophe before a formula's first character."""
    return "'" + text if text.startswith(FORMULA_START) else text


def unguarded(text: str) -> str:
    """A cell as an import reads it: the apostrophe guarded() put before a formula's start taken off."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text
