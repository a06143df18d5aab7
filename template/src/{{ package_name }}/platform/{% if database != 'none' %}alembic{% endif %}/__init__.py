"""The platform's Alembic environment, revision template and revisions.

The service's own revisions are in `migrations/versions/`; this directory
holds what every service shares: `env.py`, `script.py.mako`, and the
platform's branch (label `platform`) in `versions/`.
"""
