"""Tests of the service: in process, and against the real server process."""
