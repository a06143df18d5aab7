"""Benchmarks of the template and the services it renders; see benchmarks/README.md."""
