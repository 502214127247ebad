"""A brand's own side of tenancy, in its schema: staff accounts, roles, audit log, brand profile."""
