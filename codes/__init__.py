"""One-item-one-code: code format, batches, printing, association, scans (built in later issues)."""
