"""Scan-to-win in the brand console API (brand host, under /api/v1/rewards/)."""
