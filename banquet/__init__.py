"""Banquet liquor and banquet lottery (built in a later issue)."""
