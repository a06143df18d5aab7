"""Platform code owned by the service template.

`copier update` rewrites the files in this package when the template changes:
keep the service's own code in `features/`, `settings.py` and `app.py`.
"""
