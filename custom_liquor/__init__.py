"""Customized liquor ordering (built in a later issue)."""
