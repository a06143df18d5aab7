"""The real server process, started the way the container starts it."""

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .fixtures import RunCommand
from .processes import free_port, service_env, start, stop, wait_until_ready


@pytest.fixture
def server(
    tmp_path: Path, service_settings: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = start(
        ["serve", "--port", str(port)], service_env(**service_settings), tmp_path / "server.log"
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        stop(process)


def test_the_server_answers_health_and_metrics_and_stops_on_sigterm(
    server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base_url, process = server
    ready = wait_until_ready(base_url, process)
    assert ready.json()["status"] == "ready"
    assert httpx.get(f"{base_url}/livez").json() == {"status": "ok"}

    metrics = httpx.get(f"{base_url}/metrics")
    assert metrics.status_code == 200
    assert 'http_requests_total{method="GET",route="/readyz",status="200"}' in metrics.text

    missing = httpx.get(f"{base_url}/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    process.send_signal(signal.SIGTERM)
    # uvicorn drains, runs the shutdown, then re-raises the signal it caught.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    log = (tmp_path / "server.log").read_text()
    assert '"event": "startup"' in log
    assert '"event": "shutdown"' in log
    assert '"route": "/readyz"' in log


def test_production_with_a_placeholder_secret_does_not_start(
    run_command: RunCommand, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only while the command runs: the fixtures' clean-up reads the settings too.
    with monkeypatch.context() as production:
        production.setenv("ENVIRONMENT", "production")
        production.setenv("OTEL_EXPORTER_OTLP_HEADERS", "changeme")
        assert run_command("serve", "--port", str(free_port())) == 2
    stderr = capsys.readouterr().err
    assert "refusing to start in production" in stderr
    assert "OTEL_EXPORTER_OTLP_HEADERS holds a placeholder value" in stderr
