"""Shared commerce core: members, channel, catalog, orders, payments, points (built in later issues)."""
