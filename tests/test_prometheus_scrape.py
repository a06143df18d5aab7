"""A real Prometheus scrapes a running service: the alerts and the dashboard see real series.

For each kind of service (jobs in the database, jobs and events over each
broker, and one with neither), the API, the worker and the relay run with
their metrics ports, a job goes through, and a Prometheus scraping them every
second must then hold a series for every selector of every alert rule and
dashboard query, with every label they group or match by; and its query API
must accept every rule and query as written.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from matrix import BASE_ANSWERS, render
from suite import service_environment, sync_environment

# The template's tests never skip this: CI installs Debian's `prometheus`.
PROMETHEUS = shutil.which("prometheus")
PACKAGE = str(BASE_ANSWERS["service_name"]).replace("-", "_")
SERVICE = str(BASE_ANSWERS["service_name"])
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
STARTUP_SECONDS = 60.0
SERIES_SECONDS = 30.0
JOB_SECONDS = 30.0

COMMON = {"auth": "none", "ci": "none", "kubernetes": False}
WITH_JOBS = {**COMMON, "database": "postgresql", "example_feature": True, "worker": True}
VARIANTS: dict[str, dict[str, Any]] = {
    "database-queue": {**WITH_JOBS, "broker": "none"},
    "redis": {**WITH_JOBS, "broker": "redis"},
    "rabbitmq": {**WITH_JOBS, "broker": "rabbitmq"},
    "nats": {**WITH_JOBS, "broker": "nats"},
    "minimal": {**COMMON, "database": "none", "broker": "none"},
}

# What Grafana fills in before a dashboard query reaches Prometheus.
DASHBOARD_VARIABLES = {"$__rate_interval": "1m", "$job": ".+", "$instance": ".+"}
SELECTOR = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}')
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
# A query variable's `label_values(<selector>, <label>)`: the label's values on the series.
LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\)")
LEGEND_LABEL = re.compile(r"\{\{(\w+)\}\}")
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# The words of PromQL the rules and queries may use bare.
PROMQL_WORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "rate",
        "irate",
        "increase",
        "changes",
        "absent",
        "histogram_quantile",
    }
)
# Labels whose values are outcomes a healthy run does not produce (a 5xx, a 503):
# a selector must find the label, whatever its value.
OUTCOME_LABELS = frozenset({"status"})


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]

    def promql(self) -> str:
        parts = [
            f'{name}=~".+"' if name in OUTCOME_LABELS else f'{name}{op}"{value}"'
            for name, op, value in self.matchers
        ]
        return f"{self.metric}{{{','.join(parts)}}}"


@dataclass(frozen=True)
class Expression:
    where: str
    promql: str
    # Labels a legend or a variable shows, which must be on the series too.
    legend_labels: frozenset[str] = frozenset()

    def selectors(self) -> list[Selector]:
        return [
            Selector(metric, tuple(MATCHER.findall(body)))
            for metric, body in SELECTOR.findall(self.promql)
        ]

    def grouping_labels(self) -> set[str]:
        return {
            label.strip()
            for labels in GROUPING.findall(self.promql)
            for label in labels.split(",")
            if label.strip()
        }

    def bare_words(self) -> set[str]:
        """Identifiers outside selectors, groupings, strings and ranges: functions, or a metric."""
        rest = GROUPING.sub(" ", SELECTOR.sub(" ", self.promql))
        rest = re.sub(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]', " ", rest)
        return set(IDENTIFIER.findall(rest))


def rule_expressions(project: Path) -> tuple[list[Expression], set[str]]:
    """Every rule's expression in ops/prometheus/alerts.yml, and the recorded series' names."""
    rules = yaml.safe_load((project / "ops/prometheus/alerts.yml").read_text())
    expressions, recorded = [], set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            if "record" in rule:
                recorded.add(rule["record"])
            expressions.append(Expression(f"rule {name}", rule["expr"]))
    return expressions, recorded


def substitute_variables(text: str) -> str:
    for variable, value in DASHBOARD_VARIABLES.items():
        text = text.replace(variable, value)
    return text


def dashboard_expressions(project: Path) -> tuple[list[Expression], list[Expression]]:
    """The dashboard's panel queries, and its variables' queries (Grafana's, not PromQL)."""
    dashboard = json.loads((project / "ops/grafana/dashboard.json").read_text())
    panels = [
        Expression(
            f"panel {panel['title']!r}",
            substitute_variables(target["expr"]),
            frozenset(LEGEND_LABEL.findall(target["legendFormat"])),
        )
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    variables = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            values_of = LABEL_VALUES.fullmatch(substitute_variables(variable["definition"]))
            assert values_of, f"variable {variable['name']}: {variable['definition']}"
            selector, label = values_of.groups()
            variables.append(
                Expression(f"variable {variable['name']}", selector, frozenset({label}))
            )
    return panels, variables


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http(url: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    """GET `url`, or POST `body` as JSON; the status and the decoded JSON (or text)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json", "idempotency-key": uuid.uuid4().hex}
    request = urllib.request.Request(url, data=data, headers=headers if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def answers(url: str) -> bool:
    try:
        return http(url, timeout=1.0)[0] == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(0.2)


@contextmanager
def running(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run `command` for the block; then SIGTERM it, and SIGKILL it if it lingers."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=output)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    name = f"test_scrape_{uuid.uuid4().hex[:12]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc"]
    subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True, timeout=30)
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        subprocess.run(
            [*psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True, timeout=30
        )


@contextmanager
def events_namespace(python: Path, project: Path, env: dict[str, str]) -> Iterator[str]:
    """A namespace of the broker's own for this run, removed afterwards."""
    namespace = f"test-scrape-{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        cleanup = (
            "import asyncio\n"
            "from tests.platform.broker_support import remove_namespace\n"
            f"from {PACKAGE}.settings import Settings\n"
            "settings = Settings()\n"
            "asyncio.run(remove_namespace(settings.broker_url.get_secret_value(),"
            f" {namespace!r}, settings.events_consumer_group))\n"
        )
        subprocess.run(
            [str(python), "-c", cleanup],
            cwd=project,
            env={**env, "EVENTS_NAMESPACE": namespace},
            check=True,
            timeout=60,
        )


def prometheus_config(targets: dict[str, int]) -> dict[str, Any]:
    """Scrape each process every second, labelled as the PodMonitor labels it."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"service": SERVICE}}
                ],
            }
            for job, port in targets.items()
        ],
    }


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> tuple[int, Any]:
        return http(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")

    def series(self, selector: str) -> list[dict[str, str]]:
        status, body = self.api("series", **{"match[]": selector, "start": str(time.time() - 600)})
        assert status == 200, f"{selector}: {body}"
        data: list[dict[str, str]] = body["data"]
        return data

    def problems(self, expression: Expression, recorded: set[str]) -> list[str]:
        """What of `expression` has no series yet: selectors, or labels they lack."""
        found: list[str] = []
        labels: set[str] = set()
        for selector in expression.selectors():
            if selector.metric in recorded:
                continue
            series = self.series(selector.promql())
            names = {name for one in series for name in one}
            missing = {name for name, _, _ in selector.matchers} - names
            if not series or missing:
                found.append(f"{expression.where}: no series for {selector.promql()}")
            labels |= names
        if labels:
            wanted = expression.grouping_labels() | expression.legend_labels
            if unknown := wanted - labels:
                found.append(f"{expression.where}: no label {sorted(unknown)} on its series")
        return found


@contextmanager
def prometheus(directory: Path, targets: dict[str, int]) -> Iterator[Prometheus]:
    assert PROMETHEUS is not None, "prometheus is missing: apt-get install prometheus"
    directory.mkdir()
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets)))
    port = free_port()
    command = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    server = Prometheus(port)
    with running(command, directory, {}, directory / "prometheus.log"):
        wait_for(lambda: answers(f"{server.url}/-/ready"), STARTUP_SECONDS, "Prometheus")
        yield server


def run_a_job(api: str) -> None:
    """Create an echo job through the API and wait for a worker to finish it."""
    status, job = http(f"{api}/api/v1/jobs", {"kind": "echo", "payload": {"n": 1}})
    assert status == 201, job

    def succeeded() -> bool:
        status, body = http(f"{api}/api/v1/jobs/{job['id']}")
        return status == 200 and body["status"] == "SUCCEEDED"

    wait_for(succeeded, JOB_SECONDS, f"job {job['id']} to succeed")


@pytest.mark.parametrize("answers_", VARIANTS.values(), ids=VARIANTS.keys())
def test_prometheus_finds_every_series_the_alerts_and_the_dashboard_use(
    tmp_path: Path, answers_: dict[str, Any]
) -> None:
    label = ",".join(f"{name}={value}" for name, value in answers_.items())
    project = render(tmp_path / "service", {**BASE_ANSWERS, **answers_})
    python = sync_environment(project, label)
    has_database = answers_["database"] != "none"
    has_broker = answers_["broker"] != "none"
    ports = {"api": free_port()}
    if answers_.get("worker"):
        ports["worker"] = free_port()
    if has_broker and has_database:
        ports["relay"] = free_port()
    env = {
        **service_environment(),
        "ENVIRONMENT": "test",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    api = f"http://127.0.0.1:{ports['api']}"
    with ExitStack() as stack:
        if has_database:
            env["DATABASE_URL"] = stack.enter_context(temporary_postgres_database())
            migrate = [str(python), "-m", PACKAGE, "migrate"]
            subprocess.run(migrate, cwd=project, env=env, check=True, timeout=120)
        if has_broker:
            env["EVENTS_NAMESPACE"] = stack.enter_context(events_namespace(python, project, env))
        for process, port in ports.items():
            command = [str(python), "-m", PACKAGE, "serve" if process == "api" else process]
            setting = "PORT" if process == "api" else "METRICS_PORT"
            log = tmp_path / f"{process}.log"
            stack.enter_context(running(command, project, {**env, setting: str(port)}, log))
        for process, port in ports.items():
            path = "/readyz" if process == "api" else "/metrics"
            url = f"http://127.0.0.1:{port}{path}"
            wait_for(partial(answers, url), STARTUP_SECONDS, f"the {process}'s {path}")
        server = stack.enter_context(prometheus(tmp_path / "prometheus", ports))
        # A route besides the probes, which the ratios leave out.
        http(f"{api}/openapi.json")
        if answers_.get("example_feature"):
            run_a_job(api)

        rules, recorded = rule_expressions(project)
        panels, variables = dashboard_expressions(project)
        expressions = [*rules, *panels, *variables]
        for expression in expressions:
            bare = expression.bare_words() - PROMQL_WORDS - recorded
            assert not bare, f"{expression.where}: {sorted(bare)} used without a selector"

        def missing() -> list[str]:
            return [found for one in expressions for found in server.problems(one, recorded)]

        deadline = time.monotonic() + SERIES_SECONDS
        while (problems := missing()) and time.monotonic() < deadline:
            time.sleep(1)
        assert problems == [], "\n".join(problems)

        for expression in [*rules, *panels]:
            status, body = server.api("query", query=expression.promql)
            assert status == 200 and body["status"] == "success", (
                f"{expression.where}: {expression.promql}\n{body}"
            )
