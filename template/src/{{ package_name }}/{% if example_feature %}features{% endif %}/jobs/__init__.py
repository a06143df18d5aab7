"""Durable jobs: an example feature that exercises the whole stack.

POST a job with an Idempotency-Key; the worker runs it with retries and
exponential backoff; the database is the source of truth for its status.
Replace it with the service's own domain.
"""
