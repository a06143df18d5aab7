"""The service's own Alembic revisions, in `versions/`."""
