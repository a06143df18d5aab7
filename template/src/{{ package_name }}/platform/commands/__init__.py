"""The service's commands, one module per concern; `cli.main` imports every module here."""
