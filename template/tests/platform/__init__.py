"""The platform's tests and their helpers: owned by the template, changed by `copier update`."""
