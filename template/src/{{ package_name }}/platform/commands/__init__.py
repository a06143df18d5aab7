"""The service's commands, one module per concern; `cli.main` imports every module here.

So every process imports every command module: each imports what its command
needs (the app, the broker client, the outbox) inside its handler, and the
`serve` process does not pay for the worker's imports, nor the worker for the app's.
"""
