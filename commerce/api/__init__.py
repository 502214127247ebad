"""The commerce core's brand console API (brand host, under /api/v1/channel/ for the channel)."""
