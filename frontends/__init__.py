"""Consumer H5, terminal H5, brand console and ops console pages."""
