"""The tenancy platform: the brand registry in the public schema, and (in tenants.brand) each brand's staff."""
