"""django-tenants' PostgreSQL backend with two costs removed (see base.py and introspection.py)."""
