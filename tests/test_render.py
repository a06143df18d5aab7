"""Render every variant: no Jinja left, no debris, exactly the files it calls for, lint clean."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from matrix import TEMPLATE_ROOT, Variant, answered_default
from renders import rendered_once, unless_passed

# `${{ ... }}` is GitHub Actions' own expression syntax, `{{ $value }}`
# Prometheus' alert templating and `{{route}}` a Grafana legend, not Jinja.
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{(?! \$)(?![a-z_]+\}\})|\{%|%\}|\{#|#\}")
RUFF = Path(sys.executable).parent / "ruff"
# The template's tests never skip the alert rules: CI installs Debian's `prometheus`.
PROMTOOL = shutil.which("promtool")

PLATFORM_MODULES = (
    "__init__",
    "application",
    "auth",
    "cli",
    "commands/__init__",
    "commands/serve",
    "error_tracking",
    "errors",
    "health",
    "logging",
    "metrics",
    "middleware",
    "openapi",
    "ratelimit",
    "server",
    "settings",
    "telemetry",
    "validation",
    "wiring",
)
# The team's tests; the platform's tests and their fixtures are in tests/platform/.
SERVICE_TESTS = ("__init__", "conftest")
PLATFORM_TESTS = (
    "__init__",
    "collector",
    "fixtures",
    "processes",
    "scrape",
    "sentry_ingest",
    "test_access_log",
    "test_auth",
    "test_contract",
    "test_error_tracking",
    "test_errors",
    "test_alerts",
    "test_health",
    "test_metrics",
    "test_middleware",
    "test_rate_limit",
    "test_server",
    "test_settings",
    "test_slow_clients",
    "test_telemetry",
    "test_validation",
)
JOBS_MODULES = (
    "__init__",
    "handlers",
    "metrics",
    "models",
    "repository",
    "router",
    "runner",
    "schemas",
    "service",
)
# With a broker, the platform publishes and consumes events.
BROKER_PLATFORM_MODULES = (
    "broker",
    "contracts",
    "events",
    "messaging",
    "worker",
    "commands/events",
)
BROKER_TESTS = ("broker_support", "test_events", "test_messaging")
KUBERNETES_MANIFESTS = (
    "configmap.yaml",
    "deployment.yaml",
    "kustomization.yaml",
    "networkpolicy.yaml",
    "networkpolicy-from-ingress-controller.yaml",
    "networkpolicy-from-prometheus.yaml",
    "poddisruptionbudget.yaml",
    "service.yaml",
)
OVERLAY_FILES = (
    "kustomization.yaml",
    "patches/api.yaml",
    "patches/from-ingress-controller.yaml",
    "patches/from-prometheus.yaml",
)


def expected_files(answers: dict[str, Any]) -> set[str]:
    """The files a service rendered with these answers must have, and no others."""
    package = f"src/{answers['service_name'].replace('-', '_')}"
    files = {
        ".copier-answers.yml",
        ".dockerignore",
        ".env.example",
        ".gitattributes",
        ".gitignore",
        ".pre-commit-config.yaml",
        "Dockerfile",
        "README.md",
        "compose.yaml",
        "pyproject.toml",
        "docs/runbook.md",
        "ops/prometheus/alerts.yml",
        "ops/prometheus/alerts_test.yml",
        "ops/grafana/dashboard.json",
        f"{package}/__init__.py",
        f"{package}/__main__.py",
        f"{package}/app.py",
        f"{package}/settings.py",
        *(f"{package}/platform/{module}.py" for module in PLATFORM_MODULES),
        *(f"tests/{module}.py" for module in SERVICE_TESTS),
        *(f"tests/platform/{module}.py" for module in PLATFORM_TESTS),
    }
    if answers["database"] != "none":
        files |= {
            f"{package}/models.py",
            f"{package}/platform/db.py",
            f"{package}/platform/migrations.py",
            f"{package}/platform/schema.py",
            f"{package}/platform/alembic/__init__.py",
            f"{package}/platform/alembic/env.py",
            f"{package}/platform/alembic/script.py.mako",
            f"{package}/platform/alembic/versions/README.md",
            f"{package}/platform/commands/migrate.py",
            f"{package}/migrations/__init__.py",
            f"{package}/migrations/versions/README.md",
            "tests/platform/database.py",
            "tests/platform/test_database.py",
            "tests/platform/test_validation_database.py",
        }
    if answers["example_feature"]:
        files |= {
            f"{package}/features/__init__.py",
            *(f"{package}/features/jobs/{module}.py" for module in JOBS_MODULES),
            f"{package}/migrations/versions/rev_0001_create_jobs.py",
            "tests/test_jobs_api.py",
            "tests/test_jobs_metrics.py",
            "tests/test_jobs_model.py",
            "tests/test_jobs_roundtrip.py",
        }
    if answers["auth"] != "none":
        files |= {
            f"{package}/platform/{answers['auth']}_auth.py",
            "tests/platform/credentials.py",
            f"tests/platform/test_auth_{answers['auth']}.py",
            "tests/platform/test_rate_limit_auth.py",
        }
        if answers["auth"] == "jwt":
            files.add(f"{package}/platform/commands/token.py")
        if answers["auth"] == "api_key":
            files.add(f"{package}/platform/commands/api_key.py")
        if answers["auth"] in ("jwt", "oidc"):
            files.add(f"{package}/platform/bearer.py")
        if answers["example_feature"]:
            files.add("tests/test_jobs_auth.py")
    if answers["example_feature"]:
        if answers["broker"] == "none":
            # The worker polls the database for due jobs.
            files.add(f"{package}/features/jobs/worker.py")
        else:
            # Messages bring the jobs to the worker.
            files |= {f"{package}/features/jobs/dispatch.py", f"{package}/features/jobs/events.py"}
    if answers["broker"] != "none":
        files |= {
            f"{package}/events.py",
            *(f"{package}/platform/{module}.py" for module in BROKER_PLATFORM_MODULES),
            *(f"tests/platform/{module}.py" for module in BROKER_TESTS),
        }
        if answers["broker"] in ("redis", "nats"):
            files.add(f"{package}/platform/commands/replay.py")
        if answers["worker"]:
            files.add(f"{package}/worker.py")
        if answers["database"] != "none":
            files |= {
                f"{package}/platform/outbox.py",
                f"{package}/platform/alembic/versions/platform_0001_create_outbox.py",
                f"{package}/platform/commands/relay.py",
                "tests/platform/test_outbox.py",
            }
        if answers["example_feature"] and answers["worker"]:
            files.add("tests/test_jobs_events.py")
    if answers["database"] == "postgresql" or answers["broker"] != "none":
        # Stands in for a server that goes away and comes back.
        files.add("tests/platform/forwarder.py")
    if answers["worker"]:
        files.add(f"{package}/platform/commands/worker.py")
    if answers["worker"] and answers["broker"] == "none":
        files.add("tests/test_jobs_worker.py")
    if answers["ci"] == "github":
        files |= {".github/workflows/ci.yml", ".github/workflows/template-update.yml"}
    if answers["ci"] == "gitlab":
        files.add(".gitlab-ci.yml")
    if answers["kubernetes"]:
        files.update(f"deploy/k8s/{manifest}" for manifest in KUBERNETES_MANIFESTS)
        overlays = ("deploy/overlays/dev", "deploy/overlays/prod")
        files.update(f"{overlay}/{name}" for overlay in overlays for name in OVERLAY_FILES)
        files.add("deploy/overlays/prod/ingress.yaml")
        files |= {
            "deploy/monitoring/servicemonitor.yaml",
            "deploy/monitoring/prometheusrule.yaml",
            "deploy/monitoring/grafana-dashboard.yaml",
        }
        if answers["worker"] or (answers["broker"] != "none" and answers["database"] != "none"):
            # The worker's and the relay's metrics ports; the ServiceMonitor scrapes the API.
            files.add("deploy/monitoring/podmonitor.yaml")
        if answers["database"] == "postgresql":
            files.add("deploy/k8s/migrate-job.yaml")
            if answers["broker"] != "none":
                files.add("deploy/k8s/relay-deployment.yaml")
        if answers["database"] == "sqlite":
            # One pod runs every process; the worker and relay run beside the API.
            files.add("deploy/k8s/persistentvolumeclaim.yaml")
        else:
            files.add("deploy/k8s/horizontalpodautoscaler.yaml")
            files.update(f"{overlay}/patches/api-autoscaler.yaml" for overlay in overlays)
            if answers["worker"]:
                files |= {
                    "deploy/k8s/worker-deployment.yaml",
                    "deploy/k8s/worker-scaledobject.yaml",
                    "deploy/k8s/worker-triggerauthentication.yaml",
                }
                for overlay in overlays:
                    files |= {
                        f"{overlay}/patches/worker.yaml",
                        f"{overlay}/patches/worker-autoscaler.yaml",
                    }
    return files


@pytest.fixture
def rendered(tmp_path_factory: pytest.TempPathFactory, variant: Variant) -> Path:
    """The variant rendered once per run (tests/renders.py); tests only read it."""
    return rendered_once(tmp_path_factory, variant)


def text_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_renders_exactly_the_files_its_answers_call_for(rendered: Path, variant: Variant) -> None:
    present = {path.relative_to(rendered).as_posix() for path in text_files(rendered)}
    expected = expected_files(variant.data)
    assert present - expected == set(), "files rendered that the answers do not call for"
    assert expected - present == set(), "files the answers call for are missing"


def test_no_jinja_is_left_and_no_file_is_empty(rendered: Path) -> None:
    for path in text_files(rendered):
        text = path.read_text()
        assert text.strip(), f"{path.name} is empty"
        leftover = LEFTOVER_JINJA.search(text)
        assert leftover is None, f"Jinja left in {path.relative_to(rendered)}: {leftover}"


def test_no_whitespace_debris(rendered: Path) -> None:
    for path in text_files(rendered):
        name = path.relative_to(rendered).as_posix()
        text = path.read_text()
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{name}: ragged end of file"
        assert not text.startswith("\n"), f"{name} starts with a blank line"
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            assert line == line.rstrip(), f"{name}:{number} has trailing whitespace"
        # Python keeps two blank lines between top-level definitions; nothing needs three.
        most_blank_lines = 2 if path.suffix in (".py", ".mako") else 1
        run = 0
        for number, line in enumerate(lines, start=1):
            run = run + 1 if not line.strip() else 0
            assert run <= most_blank_lines, f"{name}:{number}: {run} blank lines in a row"


def test_answers_file_records_the_answers_and_the_template(
    rendered: Path, variant: Variant
) -> None:
    recorded = yaml.safe_load((rendered / ".copier-answers.yml").read_text())
    for question, answer in variant.data.items():
        # A question that is not asked is not recorded; it takes its default.
        assert recorded.get(question, answered_default(question, variant.data)) == answer
    assert Path(recorded["_src_path"]).is_absolute(), "a relative source breaks copier update"
    assert recorded["_commit"]


def test_lint_and_format_clean(rendered: Path) -> None:
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [str(RUFF), *command], cwd=rendered, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def promtool(rendered: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool is missing: apt-get install prometheus"
    return subprocess.run(
        [PROMTOOL, *args], cwd=rendered, capture_output=True, text=True, timeout=60, check=False
    )


def alert_names(rules: dict[str, Any]) -> list[str]:
    return [
        rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    ]


def test_the_alert_rules_pass_promtool_and_their_unit_tests(
    rendered: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rules, rule_tests = "ops/prometheus/alerts.yml", "ops/prometheus/alerts_test.yml"
    # Many variants have the same rules; promtool reads only these two files.
    inputs = (rendered / rules, rendered / rule_tests)
    with unless_passed(tmp_path_factory, "promtool", *inputs) as must_run:
        if must_run:
            checked = promtool(rendered, "check", "rules", rules)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            tested = promtool(rendered, "test", "rules", rule_tests)
            assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_alerts_are_those_of_what_the_variant_has(rendered: Path, variant: Variant) -> None:
    answers = variant.data
    has_database, has_broker = answers["database"] != "none", answers["broker"] != "none"
    expected = {
        "HttpAvailabilityBudgetBurnFast",
        "HttpAvailabilityBudgetBurnSlow",
        "HttpLatencyBudgetBurnFast",
        "HttpLatencyBudgetBurnSlow",
        "ServiceDown",
        "ServiceNotReady",
        "ServiceRestarting",
    }
    if has_database:
        expected.add("DatabasePoolSaturated")
    if answers["example_feature"] and answers["worker"]:
        expected |= {"JobFailureRatioHigh", "JobsWaiting"}
    if has_broker and has_database:
        expected.add("OutboxStuck")
    if has_broker and answers["worker"]:
        expected |= {"EventsDeadLettered", "ConsumerLagging"}
    rules = yaml.safe_load((rendered / "ops/prometheus/alerts.yml").read_text())
    assert sorted(alert_names(rules)) == sorted(expected)


def test_the_prometheus_rule_holds_exactly_the_alert_rules(
    rendered: Path, variant: Variant
) -> None:
    if not variant.data["kubernetes"]:
        return
    rules = yaml.safe_load((rendered / "ops/prometheus/alerts.yml").read_text())
    manifest = yaml.safe_load((rendered / "deploy/monitoring/prometheusrule.yaml").read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"] == rules


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_the_dashboard_is_pretty_json_grafana_imports(rendered: Path) -> None:
    text = (rendered / "ops/grafana/dashboard.json").read_text()
    dashboard = json.loads(text)
    assert text == json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == "orders-api"
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance"} <= set(variables)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard_panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            assert 'service="orders-api",job=~"$job",instance=~"$instance"' in target["expr"]


def test_the_dashboard_shows_what_the_variant_has(rendered: Path, variant: Variant) -> None:
    answers = variant.data
    dashboard = json.loads((rendered / "ops/grafana/dashboard.json").read_text())
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    expected = ["HTTP"]
    expected += ["Jobs"] if answers["example_feature"] else []
    expected += ["Events"] if answers["broker"] != "none" else []
    expected += ["Database pool"] if answers["database"] != "none" else []
    assert rows == [*expected, "Runtime"]
    queries = " ".join(
        target["expr"] for panel in dashboard_panels(dashboard) for target in panel["targets"]
    )
    assert ("events_consumer_lag" in queries) == (answers["broker"] != "none" and answers["worker"])
    assert ("outbox_pending" in queries) == (
        answers["broker"] != "none" and answers["database"] != "none"
    )


def test_the_dashboard_config_map_holds_the_dashboard(rendered: Path, variant: Variant) -> None:
    if not variant.data["kubernetes"]:
        return
    dashboard = json.loads((rendered / "ops/grafana/dashboard.json").read_text())
    manifest = yaml.safe_load((rendered / "deploy/monitoring/grafana-dashboard.yaml").read_text())
    assert manifest["kind"] == "ConfigMap"
    assert manifest["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(manifest["data"]["orders-api.json"]) == dashboard


def test_template_lint_matches_the_pinned_ruff() -> None:
    """The template's own ruff is the version rendered services pin."""
    pinned = re.search(
        r'^ruff = "(.+)"$', (TEMPLATE_ROOT / "extensions" / "dependencies.toml").read_text(), re.M
    )
    installed = subprocess.run(
        [str(RUFF), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    assert pinned is not None
    assert installed == pinned.group(1)
