"""Helpers shared by test modules that need more than Django's in-process test client."""
