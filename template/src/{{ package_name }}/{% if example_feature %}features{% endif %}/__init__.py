"""The service's features: each a package with its router, service, repository and models."""
