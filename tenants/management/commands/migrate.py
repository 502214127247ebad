"""`migrate` is `migrate_schemas` (as in django-tenants), with our skip of up-to-date brand schemas."""

from tenants.management.commands.migrate_schemas import Command

__all__ = ["Command"]
