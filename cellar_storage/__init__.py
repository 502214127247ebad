"""Cellar storage and sealed jars (built in a later issue)."""
