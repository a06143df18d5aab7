"""Static checks of what cannot run on the test machine: image, compose, CI and manifests.

There is no Docker engine, CI runner or cluster here, so these files are linted
(hadolint; checkov over the image, CI and manifests; zizmor over the GitHub
workflows) and validated against their published schemas (check-jsonschema,
kubernetes-validate in strict mode; custom resources against their vendored
CustomResourceDefinitions, tests/schemas), the Kubernetes overlays are built
as kustomize builds them (tests/kustomize_build.py), and the values they must
share (the port, the container user, the package, the settings, the database,
the broker's names) are checked to agree with the answers and with each other.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import jsonschema  # type: ignore[import-untyped]  # no stubs in the locked set
import pytest
import yaml
from kustomize_build import build, containers_in
from matrix import TEMPLATE_ROOT
from matrix import render as render_template

# The tools come from this repository's own environment, the one running pytest.
TOOLS = Path(sys.executable).parent
HADOLINT = TOOLS / "hadolint"
CHECK_JSONSCHEMA = TOOLS / "check-jsonschema"
KUBERNETES_VALIDATE = TOOLS / "kubernetes-validate"
ZIZMOR = TOOLS / "zizmor"
# checkov's dependencies do not fit beside this repository's locked set: uv runs
# it from a tool environment of its own, at this version.
CHECKOV_VERSION = "3.3.30"

COMMON_ANSWERS = {
    "service_name": "orders-api",
    "description": "Takes and tracks orders",
    "team": "commerce",
}
# Each CI provider, both manifest answers and each database occur, with and
# without a worker; the ports differ from the default and from each other, so a
# port written into a file by hand shows up.
VARIANTS: dict[str, dict[str, Any]] = {
    "github-k8s": {**COMMON_ANSWERS, "http_port": 8123, "ci": "github", "kubernetes": True},
    "gitlab-k8s": {**COMMON_ANSWERS, "http_port": 9050, "ci": "gitlab", "kubernetes": True},
    "no-ci": {**COMMON_ANSWERS, "ci": "none", "kubernetes": False},
    "github-k8s-postgresql": {
        **COMMON_ANSWERS,
        "http_port": 8124,
        "ci": "github",
        "kubernetes": True,
        "database": "postgresql",
        "worker": True,
    },
    "gitlab-k8s-postgresql-no-worker": {
        **COMMON_ANSWERS,
        "http_port": 9051,
        "ci": "gitlab",
        "kubernetes": True,
        "database": "postgresql",
        "worker": False,
    },
    "gitlab-k8s-sqlite": {
        **COMMON_ANSWERS,
        "http_port": 9052,
        "ci": "gitlab",
        "kubernetes": True,
        "database": "sqlite",
        "worker": True,
    },
    "github-sqlite": {
        **COMMON_ANSWERS,
        "http_port": 8125,
        "ci": "github",
        "kubernetes": False,
        "database": "sqlite",
        "worker": True,
    },
    # Each broker with each CI provider, with and without a database and a worker.
    "github-k8s-postgresql-redis": {
        **COMMON_ANSWERS,
        "http_port": 8126,
        "ci": "github",
        "kubernetes": True,
        "database": "postgresql",
        "broker": "redis",
        "worker": True,
        "auth": "jwt",
    },
    "gitlab-k8s-sqlite-nats": {
        **COMMON_ANSWERS,
        "http_port": 9053,
        "ci": "gitlab",
        "kubernetes": True,
        "database": "sqlite",
        "broker": "nats",
        "worker": True,
    },
    "github-k8s-rabbitmq": {
        **COMMON_ANSWERS,
        "http_port": 8127,
        "ci": "github",
        "kubernetes": True,
        "database": "none",
        "broker": "rabbitmq",
        "worker": True,
    },
    "gitlab-k8s-postgresql-rabbitmq-no-worker": {
        **COMMON_ANSWERS,
        "http_port": 9054,
        "ci": "gitlab",
        "kubernetes": True,
        "database": "postgresql",
        "broker": "rabbitmq",
        "worker": False,
    },
    "github-nats-no-worker": {
        **COMMON_ANSWERS,
        "http_port": 8128,
        "ci": "github",
        "kubernetes": False,
        "database": "none",
        "broker": "nats",
        "worker": False,
    },
    # Each broker's autoscaling trigger, which needs the example feature's topics.
    "github-k8s-postgresql-nats-oidc": {
        **COMMON_ANSWERS,
        "http_port": 8129,
        "ci": "github",
        "kubernetes": True,
        "database": "postgresql",
        "broker": "nats",
        "worker": True,
        "auth": "oidc",
    },
    "gitlab-k8s-postgresql-rabbitmq": {
        **COMMON_ANSWERS,
        "http_port": 9056,
        "ci": "gitlab",
        "kubernetes": True,
        "database": "postgresql",
        "broker": "rabbitmq",
        "worker": True,
    },
    "gitlab-k8s-redis": {
        **COMMON_ANSWERS,
        "http_port": 9055,
        "ci": "gitlab",
        "kubernetes": True,
        "database": "none",
        "broker": "redis",
        "worker": True,
    },
}
ALL = list(VARIANTS)
WITH_KUBERNETES = [name for name, answers in VARIANTS.items() if answers["kubernetes"]]
WITH_GITHUB = [name for name, answers in VARIANTS.items() if answers["ci"] == "github"]
WITH_GITLAB = [name for name, answers in VARIANTS.items() if answers["ci"] == "gitlab"]
SHIPPED = [
    name for name, answers in VARIANTS.items() if answers["ci"] != "none" or answers["kubernetes"]
]
BILL_OF_MATERIALS = TEMPLATE_ROOT / "extensions" / "dependencies.toml"

# The URL scheme each broker's BROKER_URL uses.
BROKER_SCHEMES = {"redis": "redis", "rabbitmq": "amqp", "nats": "nats"}

# A setting in .env.example: `KEY=value`, or `# KEY=value` for one unset by default.
ENV_LINE = re.compile(r"^(?P<unset># )?(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
SETTINGS_CLASSES = (("platform/settings.py", "PlatformSettings"), ("settings.py", "Settings"))


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Renders a variant on first use and hands out the same tree afterwards."""
    rendered: dict[str, Path] = {}

    def render_variant(name: str) -> Path:
        if name not in rendered:
            # In a directory named after the variant, so a tool's findings name it.
            destination = tmp_path_factory.mktemp(name) / name
            rendered[name] = render_template(destination, VARIANTS[name])
        return rendered[name]

    return render_variant


@pytest.fixture(params=ALL)
def project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
    return render(request.param)


@pytest.fixture(params=WITH_KUBERNETES)
def k8s_project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
    return render(request.param)


@pytest.fixture(params=SHIPPED)
def shipped_project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
    return render(request.param)


@pytest.fixture(params=WITH_GITHUB)
def github_project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
    return render(request.param)


@pytest.fixture(params=WITH_GITLAB)
def gitlab_project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
    return render(request.param)


def run_tool(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )


def assert_tool_passes(*command: str | Path) -> None:
    result = run_tool(*command)
    assert result.returncode == 0, (
        f"{Path(command[0]).name} failed:\n{result.stdout}{result.stderr}"
    )


def answers_of(project: Path) -> dict[str, Any]:
    """The answers as recorded, defaults included."""
    answers: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers


def load_yaml(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def pinned_image(name: str) -> str:
    with BILL_OF_MATERIALS.open("rb") as file:
        image: str = tomllib.load(file)["images"][name]
    return image


def seconds(duration: str) -> int:
    """A compose duration such as `30s` or `1m30s`, in seconds."""
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"unexpected duration {duration!r}"
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def module_command(project: Path, command: str) -> list[str]:
    """How every container runs the service: `python -m <package> <command>`."""
    return ["python", "-m", answers_of(project)["package_name"], command]


def broker_of(project: Path) -> str | None:
    """The answered broker, None without one."""
    broker: str = answers_of(project).get("broker", "none")
    return None if broker == "none" else broker


def default_broker_url(project: Path) -> SplitResult:
    """BROKER_URL as the settings default it: where the tests look for the broker."""
    default = literal_default(settings_fields(project)["broker_url"])
    assert isinstance(default, str)
    return urlsplit(default)


def worker_grace_seconds(project: Path) -> float:
    """The longest a worker may take to stop on SIGTERM: its jobs' or its messages' grace."""
    fields = settings_fields(project)
    graces = [
        literal_default(fields[name])
        for name in ("jobs_shutdown_grace_seconds", "events_shutdown_grace_seconds")
        if name in fields
    ]
    assert graces, "a worker without a shutdown grace period"
    return float(max(graces))


# Dockerfile


def runtime_stage(project: Path) -> list[tuple[str, str]]:
    """The final stage's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (project / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def only(instructions: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for name, arguments in instructions if name == keyword]
    assert len(found) == 1, f"the runtime stage should have one {keyword}, has {len(found)}"
    return found[0]


def image_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in instructions:
        if name == "ENV":
            for item in shlex.split(arguments):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def image_user(project: Path) -> tuple[int, int]:
    uid, _, gid = only(runtime_stage(project), "USER").partition(":")
    return int(uid), int(gid)


def test_dockerfile_passes_hadolint_without_any_finding(project: Path) -> None:
    dockerfile = project / "Dockerfile"
    assert_tool_passes(HADOLINT, "--failure-threshold", "style", "--no-color", dockerfile)


def test_image_serves_the_package_on_the_answered_port(project: Path) -> None:
    answers = answers_of(project)
    stage = runtime_stage(project)
    env = image_env(stage)
    assert only(stage, "EXPOSE") == str(answers["http_port"])
    assert env["PORT"] == str(answers["http_port"])
    assert env["HOST"] == "0.0.0.0", "bound to loopback, the container is unreachable"
    assert json.loads(only(stage, "CMD")) == ["python", "-m", answers["package_name"], "serve"]
    healthcheck = only(stage, "HEALTHCHECK")
    assert "/livez" in healthcheck
    assert "os.environ['PORT']" in healthcheck, "the healthcheck must follow the PORT setting"


def test_image_runs_as_its_own_fixed_non_root_user(project: Path) -> None:
    uid, gid = image_user(project)
    assert uid != 0
    assert gid != 0
    creation = " ".join(arguments for name, arguments in runtime_stage(project) if name == "RUN")
    assert re.search(rf"groupadd .*--gid {gid}\b", creation), "the group has another gid"
    assert re.search(rf"useradd .*--uid {uid}\b", creation), "the user has another uid"


# compose.yaml


def test_compose_file_matches_the_compose_spec(project: Path) -> None:
    compose = project / "compose.yaml"
    assert_tool_passes(CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", compose)


def test_compose_publishes_and_probes_the_answered_port(project: Path) -> None:
    answers = answers_of(project)
    api = load_yaml(project / "compose.yaml")["services"]["api"]
    assert api["build"]["context"] == "."
    assert [port["target"] for port in api["ports"]] == [answers["http_port"]]
    assert api["environment"]["PORT"] == str(answers["http_port"])
    # A .env copied from .env.example says HOST=127.0.0.1; compose must override it.
    assert api["environment"]["HOST"] == "0.0.0.0"
    probe = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{answers['http_port']}/readyz" in probe


def compose_services(project: Path) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load_yaml(project / "compose.yaml")["services"]
    return services


def expected_app_services(answers: dict[str, Any]) -> set[str]:
    """The containers that run the service's own image."""
    services = {"api"}
    if answers["database"] != "none":
        services.add("migrate")
    if answers.get("worker"):
        services.add("worker")
    if answers.get("broker", "none") != "none" and answers["database"] != "none":
        services.add("relay")
    return services


def broker_users(answers: dict[str, Any]) -> set[str]:
    """The containers that talk to the broker: all but migrate."""
    if answers.get("broker", "none") == "none":
        return set()
    return expected_app_services(answers) - {"migrate"}


def test_compose_runs_exactly_the_processes_the_answers_ask_for(project: Path) -> None:
    answers = answers_of(project)
    expected = expected_app_services(answers)
    if answers["database"] == "postgresql":
        expected.add("db")
    if answers.get("broker", "none") != "none":
        expected.add(answers["broker"])
    assert set(compose_services(project)) == expected


def test_compose_builds_one_image_that_every_process_runs(project: Path) -> None:
    services = compose_services(project)
    app = expected_app_services(answers_of(project))
    builders = [name for name in app if "build" in services[name]]
    assert builders == ["api"], "one service builds the image; the others run it"
    images = {services[name]["image"] for name in app}
    assert images == {services["api"]["image"]}
    for name in app - {"api"}:
        assert services[name]["command"] == module_command(project, name)
        # The image's healthcheck asks the HTTP server, which only api runs.
        assert services[name]["healthcheck"] == {"disable": True}
        assert "ports" not in services[name]
    for name in app:
        service = services[name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert service["environment"]["ENVIRONMENT"] == "development"


def test_compose_migrates_before_anything_uses_the_database(project: Path) -> None:
    answers = answers_of(project)
    services = compose_services(project)
    # What each process waits for, besides the broker (checked below).
    broker = answers.get("broker", "none")
    waits = {
        name: {k: v for k, v in services[name].get("depends_on", {}).items() if k != broker}
        for name in expected_app_services(answers)
    }
    if answers["database"] == "none":
        for name, wait in waits.items():
            assert wait == {}, f"{name} waits for {wait}, with no database to migrate"
        return
    for name in expected_app_services(answers) - {"migrate"}:
        assert waits[name] == {"migrate": {"condition": "service_completed_successfully"}}, (
            f"{name} may start before the schema is migrated"
        )
    migrate_after = services["migrate"].get("depends_on", {})
    if answers["database"] == "postgresql":
        assert migrate_after == {"db": {"condition": "service_healthy"}}
    else:
        assert migrate_after == {}


def test_compose_points_every_process_at_the_same_database(project: Path) -> None:
    answers = answers_of(project)
    services = compose_services(project)
    app = expected_app_services(answers)
    if answers["database"] == "none":
        assert all("DATABASE_URL" not in services[name]["environment"] for name in app)
        return
    urls = {services[name]["environment"]["DATABASE_URL"] for name in app}
    assert len(urls) == 1, f"the processes use different databases: {urls}"
    (url,) = urls
    if answers["database"] == "postgresql":
        db = services["db"]
        parts = urlsplit(url)
        assert parts.scheme == "postgresql+asyncpg"
        assert (parts.hostname, parts.port) == ("db", 5432)
        assert parts.path == f"/{db['environment']['POSTGRES_DB']}"
        assert parts.password == db["environment"]["POSTGRES_PASSWORD"]
        assert parts.path == f"/{answers['package_name']}"
        assert db["image"] == pinned_image("postgres")
        assert "pg_isready" in db["healthcheck"]["test"]
        (data,) = db["volumes"]
        assert data.split(":")[0] in load_yaml(project / "compose.yaml")["volumes"]
    else:
        assert url.startswith("sqlite+aiosqlite:////"), "SQLite needs an absolute path here"
        directory = str(Path(url.removeprefix("sqlite+aiosqlite:///")).parent)
        volumes = load_yaml(project / "compose.yaml")["volumes"]
        for name in app:
            mounts = dict(mount.split(":")[::-1] for mount in services[name]["volumes"])
            assert mounts.get(directory) in volumes, f"{name} does not mount {directory}"
        # A named volume starts out with the image's ownership of its mount point.
        uid, _ = image_user(project)
        creation = " ".join(a for keyword, a in runtime_stage(project) if keyword == "RUN")
        assert re.search(rf"useradd [^&]*--uid {uid}\b[^&]* app\b", creation)
        assert re.search(
            rf"install --directory --owner=app --group=app [^&]*{re.escape(directory)}(\s|$)",
            creation,
        ), f"the image does not create {directory} writable by the service's user"


def test_compose_worker_gets_its_grace_period(project: Path) -> None:
    services = compose_services(project)
    if "worker" not in services:
        pytest.skip("no worker")
    assert seconds(services["worker"]["stop_grace_period"]) > worker_grace_seconds(project)
    assert services["worker"]["restart"] == "unless-stopped"


def test_compose_points_every_process_at_the_same_broker(project: Path) -> None:
    answers = answers_of(project)
    services = compose_services(project)
    app = expected_app_services(answers)
    broker = broker_of(project)
    if broker is None:
        assert all("BROKER_URL" not in services[name]["environment"] for name in app)
        return
    users = broker_users(answers)
    for name in app - users:
        assert "BROKER_URL" not in services[name]["environment"], f"{name} needs no broker"
        assert broker not in services[name].get("depends_on", {})
    for name in users:
        assert "BROKER_URL" in services[name]["environment"], f"{name} cannot reach the broker"
    urls = {services[name]["environment"]["BROKER_URL"] for name in users}
    assert len(urls) == 1, f"the processes use different brokers: {urls}"
    url = urlsplit(urls.pop())
    # The broker service, by name, on the port the settings default to.
    assert url.scheme == BROKER_SCHEMES[broker]
    assert (url.hostname, url.port) == (broker, default_broker_url(project).port)
    service = services[broker]
    assert service["image"] == pinned_image(broker)
    if broker == "rabbitmq":
        assert url.password == service["environment"]["RABBITMQ_DEFAULT_PASS"]
    if broker == "nats":
        assert "--jetstream" in service["command"], "NATS without JetStream keeps no streams"
    # The broker keeps its data across restarts, on a named volume.
    (data,) = service["volumes"]
    assert data.split(":")[0] in load_yaml(project / "compose.yaml")["volumes"]
    assert service["restart"] == "unless-stopped"
    # The processes start once the broker answers, not merely once it has started.
    healthcheck = service["healthcheck"]
    assert "disable" not in healthcheck
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL")
    for name in users:
        waits = services[name].get("depends_on", {}).get(broker)
        assert waits == {"condition": "service_healthy"}, f"{name} may start before the broker"


def test_compose_relay_publishes_the_outbox(project: Path) -> None:
    answers = answers_of(project)
    services = compose_services(project)
    if broker_of(project) is None or answers["database"] == "none":
        assert "relay" not in services
        return
    relay = services["relay"]
    assert relay["command"] == module_command(project, "relay")
    assert relay["restart"] == "unless-stopped"
    assert {"DATABASE_URL", "BROKER_URL"} <= set(relay["environment"])


# CI


GITHUB_WORKFLOW_SCHEMAS = ("vendor.github-workflows", "custom.github-workflows-require-timeout")


def test_github_workflows_match_their_schemas(github_project: Path) -> None:
    workflows = sorted((github_project / ".github" / "workflows").glob("*.yml"))
    assert [path.name for path in workflows] == ["ci.yml", "template-update.yml"]
    for schema in GITHUB_WORKFLOW_SCHEMAS:
        assert_tool_passes(CHECK_JSONSCHEMA, "--builtin-schema", schema, *workflows)


def test_a_scheduled_job_reports_template_drift(github_project: Path, gitlab_project: Path) -> None:
    github = load_yaml(github_project / ".github" / "workflows" / "template-update.yml")
    assert "schedule" in github[True]  # type: ignore[index]  # YAML reads the bare key `on` as true
    github_runs = [
        step["run"] for job in github["jobs"].values() for step in job["steps"] if "run" in step
    ]
    gitlab_job = load_yaml(gitlab_project / ".gitlab-ci.yml")["template-update"]
    assert gitlab_job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    for commands in (github_runs, gitlab_job["script"]):
        # Git learns the template's credentials first; the check is the last command.
        assert commands[-1].endswith("copier check-update --quiet")
        assert all("insteadOf" in command for command in commands[:-1])


def test_gitlab_ci_matches_its_schema(gitlab_project: Path) -> None:
    pipeline = gitlab_project / ".gitlab-ci.yml"
    assert_tool_passes(CHECK_JSONSCHEMA, "--builtin-schema", "vendor.gitlab-ci", pipeline)


def github_workflows(github_project: Path) -> list[Path]:
    return sorted((github_project / ".github" / "workflows").glob("*.yml"))


def test_github_workflows_pass_zizmor(github_project: Path) -> None:
    # Offline: the audits that ask GitHub's API about the pinned commits cannot run here.
    assert_tool_passes(ZIZMOR, "--offline", *github_workflows(github_project))


# `uses: owner/repo@<commit> # vX.Y.Z`, the form a tag cannot be moved under.
USES = re.compile(r"^\s*(?:- )?uses: (?P<action>[^@\s]+)@(?P<ref>\S+)(?P<comment>.*)$")


def test_github_actions_are_pinned_by_commit_to_a_release(github_project: Path) -> None:
    pins = []
    for path in github_workflows(github_project):
        pins += [match for line in path.read_text().splitlines() if (match := USES.match(line))]
    assert pins, "no action found: the pattern no longer matches the workflows"
    for pin in pins:
        assert re.fullmatch(r"[0-9a-f]{40}", pin["ref"]), f"{pin['action']} is not pinned by commit"
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", pin["comment"]), (
            f"{pin['action']} does not name the release its commit is"
        )


# An inline suppression, checkov's or zizmor's, and what follows it on the line.
SUPPRESSION = re.compile(
    r"(?:checkov:skip=[A-Z0-9_]+:?|checkov\.io/skip\d+: [A-Z0-9_]+=?|zizmor: ignore\[[a-z-]+\])"
    r"(?P<reason>.*)$"
)


def test_every_suppressed_finding_says_why(shipped_project: Path) -> None:
    files = [*github_workflows(shipped_project), *shipped_project.glob(".gitlab-ci.yml")]
    files += sorted((shipped_project / "deploy").rglob("*.yaml"))
    for path in files:
        for line in path.read_text().splitlines():
            match = SUPPRESSION.search(line)
            if match:
                assert match["reason"].strip(), (
                    f"{path.name}: a finding suppressed without a reason"
                )


def github_jobs(github_project: Path) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = load_yaml(
        github_project / ".github" / "workflows" / "ci.yml"
    )["jobs"]
    return jobs


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def commands_of(job: dict[str, Any]) -> str:
    return "\n".join(step["run"] for step in job["steps"] if "run" in step)


def test_github_jobs_hold_only_the_permissions_they_need(github_project: Path) -> None:
    workflow = load_yaml(github_project / ".github" / "workflows" / "ci.yml")
    assert workflow["permissions"] == {}
    for name, job in github_jobs(github_project).items():
        writes = {scope for scope, access in job["permissions"].items() if access == "write"}
        expected = {"packages", "id-token", "attestations"} if name == "publish" else set()
        assert writes == expected, f"{name} may write {writes}"


def overlay_image_name(project: Path) -> str:
    """The image the prod overlay names, the name a deploy sets the release's for."""
    kustomization = load_yaml(project / "deploy" / "overlays" / "prod" / "kustomization.yaml")
    (image,) = kustomization["images"]
    name: str = image["name"]
    return name


def test_github_builds_scans_and_ships_a_tag_after_the_checks(github_project: Path) -> None:
    workflow = load_yaml(github_project / ".github" / "workflows" / "ci.yml")
    assert workflow[True]["push"]["tags"] == ["v*"]  # type: ignore[index]  # the bare key `on`
    jobs = github_jobs(github_project)
    assert "uv export --frozen" in commands_of(jobs["audit"])
    assert "pip-audit --requirement requirements.txt" in commands_of(jobs["audit"])
    image = jobs["image"]
    assert set(image["needs"]) == {"lint", "typecheck", "test"}
    (build,) = steps_using(image, "docker/build-push-action")
    assert build["with"]["cache-from"] == "type=gha"
    sbom, scan = steps_using(image, "aquasecurity/trivy-action")
    assert sbom["with"]["format"] == "cyclonedx"
    assert (scan["with"]["severity"], scan["with"]["exit-code"]) == ("HIGH,CRITICAL", "1")
    (upload,) = steps_using(image, "actions/upload-artifact")
    assert upload["with"]["path"] == sbom["with"]["output"]
    publish = jobs["publish"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(publish["needs"]) == {"audit", "image"}
    (push,) = steps_using(publish, "docker/build-push-action")
    tags = push["with"]["tags"].splitlines()
    assert [tag.rpartition(":")[2] for tag in tags] == [
        "${{ steps.name.outputs.version }}",
        "${{ github.sha }}",
    ]
    (attest,) = steps_using(publish, "actions/attest-build-provenance")
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    if not answers_of(github_project)["kubernetes"]:
        assert "deploy" not in jobs
        return
    deploy = jobs["deploy"]
    assert (deploy["needs"], deploy["environment"]) == ("publish", "production")
    assert deploy["if"] == publish["if"]
    commands = commands_of(deploy)
    assert f'kustomize edit set image "{overlay_image_name(github_project)}=' in commands
    assert "kubectl apply -k deploy/overlays/prod" in commands


def test_gitlab_builds_scans_and_ships_a_tag_after_the_checks(gitlab_project: Path) -> None:
    pipeline = load_yaml(gitlab_project / ".gitlab-ci.yml")
    audit = " ".join(pipeline["audit"]["script"])
    assert "uv export --frozen" in audit
    assert "pip-audit --requirement requirements.txt" in audit
    build = pipeline["build"]
    assert set(build["needs"]) == {"lint", "typecheck", "test"}
    (command,) = build["script"]
    assert "--import-cache type=registry" in command
    assert "--export-cache type=registry" in command
    scan = pipeline["scan"]
    assert scan["needs"] == ["build"]
    sbom, vulnerabilities = scan["script"]
    assert "--format cyclonedx --output sbom.cdx.json" in sbom
    assert "--severity HIGH,CRITICAL" in vulnerabilities
    assert "--exit-code 1" in vulnerabilities
    assert scan["artifacts"]["reports"]["cyclonedx"] == "sbom.cdx.json"
    publish = pipeline["publish"]
    release = [{"if": "$CI_COMMIT_TAG =~ /^v/"}]
    assert publish["rules"] == release
    assert set(publish["needs"]) == {"audit", "build", "scan"}
    assert publish["script"][0] == 'VERSION="${CI_COMMIT_TAG#v}"'
    assert "$CI_REGISTRY_IMAGE:$VERSION,$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA" in publish["script"][1]
    assert "attest:provenance" in publish["script"][1]
    if not answers_of(gitlab_project)["kubernetes"]:
        assert "deploy" not in pipeline
        return
    deploy = pipeline["deploy"]
    assert deploy["rules"] == [{**release[0], "when": "manual"}]
    assert (deploy["needs"], deploy["environment"]) == (["publish"], {"name": "production"})
    commands = "\n".join(deploy["script"])
    assert f'kustomize edit set image "{overlay_image_name(gitlab_project)}=' in commands
    assert "kubectl apply -k deploy/overlays/prod" in commands


# What every CI provider must run, each command with any further arguments.
CI_COMMANDS = (
    "uv sync --locked",
    "uv run ruff check",
    "uv run ruff format --check",
    "uv run mypy",
    "uv run pytest",
)


def missing_commands(lines: set[str]) -> list[str]:
    return [
        command
        for command in CI_COMMANDS
        if not any(line == command or line.startswith(f"{command} ") for line in lines)
    ]


def test_github_workflow_runs_every_check(github_project: Path) -> None:
    workflow = load_yaml(github_project / ".github" / "workflows" / "ci.yml")
    lines = {
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    }
    assert missing_commands(lines) == []


def test_gitlab_pipeline_runs_every_check(gitlab_project: Path) -> None:
    pipeline = load_yaml(gitlab_project / ".gitlab-ci.yml")
    lines = {
        line
        for job in pipeline.values()
        if isinstance(job, dict)
        for key in ("script", "before_script")
        for line in job.get(key, [])
    }
    assert missing_commands(lines) == []


def github_test_job(github_project: Path) -> dict[str, Any]:
    workflow = load_yaml(github_project / ".github" / "workflows" / "ci.yml")
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    (test_job,) = [
        job
        for job in jobs.values()
        if any(step.get("run") == "uv run pytest" for step in job["steps"])
    ]
    return test_job


def test_github_tests_run_against_their_own_postgresql(github_project: Path) -> None:
    test_job = github_test_job(github_project)
    images = [service["image"] for service in test_job.get("services", {}).values()]
    if answers_of(github_project)["database"] != "postgresql":
        assert pinned_image("postgres") not in images
        assert "TEST_POSTGRES_URL" not in test_job.get("env", {})
        return
    assert images.count(pinned_image("postgres")) == 1
    postgres = test_job["services"]["postgres"]
    assert postgres["image"] == pinned_image("postgres")
    assert "--health-cmd" in postgres["options"], "the tests could start before the server"
    # The steps run on the runner itself, which reaches the service on its published port.
    url = urlsplit(test_job["env"]["TEST_POSTGRES_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname in ("127.0.0.1", "localhost")
    assert f"{url.port}:5432" in postgres["ports"]
    assert (url.username, url.password) == ("postgres", postgres["env"]["POSTGRES_PASSWORD"])


def gitlab_test_job(gitlab_project: Path) -> dict[str, Any]:
    pipeline = load_yaml(gitlab_project / ".gitlab-ci.yml")
    (test_job,) = [
        job
        for job in pipeline.values()
        if isinstance(job, dict) and any("uv run pytest" in line for line in job.get("script", []))
    ]
    return test_job


def test_gitlab_tests_run_against_their_own_postgresql(gitlab_project: Path) -> None:
    test_job = gitlab_test_job(gitlab_project)
    found = [s for s in test_job.get("services", []) if s["name"] == pinned_image("postgres")]
    if answers_of(gitlab_project)["database"] != "postgresql":
        assert found == []
        assert "TEST_POSTGRES_URL" not in test_job.get("variables", {})
        return
    (postgres,) = found
    url = urlsplit(test_job["variables"]["TEST_POSTGRES_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port) == (postgres["alias"], 5432)
    assert (url.username, url.password) == ("postgres", postgres["variables"]["POSTGRES_PASSWORD"])


def test_github_tests_run_against_their_own_broker(github_project: Path) -> None:
    test_job = github_test_job(github_project)
    services = test_job.get("services", {})
    runs = [step.get("run", "") for step in test_job["steps"]]
    broker = broker_of(github_project)
    # Every service's rate-limit tests count in Redis too, on 127.0.0.1:6379.
    assert "redis" in services
    assert "6379:6379" in services["redis"]["ports"]
    assert "TEST_REDIS_URL" not in test_job.get("env", {})
    for name in ("redis", "rabbitmq"):
        if name in services:
            assert services[name]["image"] == pinned_image(name)
            assert "--health-cmd" in services[name]["options"], "the tests could start first"
    # The steps run on the runner, and the tests find the broker where the
    # settings default to: on 127.0.0.1, at its usual port.
    assert "BROKER_URL" not in test_job.get("env", {})
    if broker is None:
        assert "rabbitmq" not in services
        assert not any("docker run" in run for run in runs)
        return
    url = default_broker_url(github_project)
    assert url.hostname == "127.0.0.1"
    if broker in services:
        assert f"{url.port}:{url.port}" in services[broker]["ports"]
        return
    # A service container cannot be given a command, and NATS needs one for JetStream.
    assert broker == "nats"
    (start,) = [index for index, run in enumerate(runs) if run.startswith("docker run")]
    command = runs[start].split()
    assert pinned_image("nats") in command
    assert "--jetstream" in command
    assert f"127.0.0.1:{url.port}:{url.port}" in command
    (wait,) = [index for index, run in enumerate(runs) if "/healthz" in run]
    assert start < wait < runs.index("uv run pytest"), "the tests could start before NATS"


def test_gitlab_tests_run_against_their_own_broker(gitlab_project: Path) -> None:
    test_job = gitlab_test_job(gitlab_project)
    variables = test_job.get("variables", {})
    broker = broker_of(gitlab_project)
    images = {service["name"] for service in test_job.get("services", [])}
    # Redis is there for the rate-limit tests whatever the broker.
    brokers = {pinned_image(name) for name in BROKER_SCHEMES} - {pinned_image("redis")}
    if broker is None:
        assert images & brokers == set()
        assert "BROKER_URL" not in variables
        return
    (service,) = [s for s in test_job["services"] if s["name"] == pinned_image(broker)]
    # Services are reached by alias, not on 127.0.0.1 where the tests look by
    # default: BROKER_URL tells them.
    url = urlsplit(variables["BROKER_URL"])
    default = default_broker_url(gitlab_project)
    assert (url.scheme, url.hostname, url.port) == (default.scheme, service["alias"], default.port)
    assert (url.username, url.password) == (default.username, default.password)
    assert url.path == default.path
    if broker == "nats":
        assert "--jetstream" in service["command"], "NATS without JetStream keeps no streams"


def test_gitlab_rate_limit_tests_reach_their_redis(gitlab_project: Path) -> None:
    test_job = gitlab_test_job(gitlab_project)
    (redis,) = [s for s in test_job["services"] if s["name"] == pinned_image("redis")]
    url = urlsplit(test_job["variables"]["TEST_REDIS_URL"])
    assert (url.scheme, url.hostname, url.port) == ("redis", redis["alias"], 6379)


# Kubernetes


def manifests(project: Path) -> Iterator[Path]:
    """Every Kubernetes resource file (the Kustomization is kustomize's, not the API's)."""
    for path in sorted((project / "deploy" / "k8s").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield path


def resources(project: Path) -> list[dict[str, Any]]:
    return [load_yaml(path) for path in manifests(project)]


def component(document: dict[str, Any]) -> str | None:
    labels: dict[str, str] = document["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component")


def find(project: Path, kind: str, of: str | None = None) -> list[dict[str, Any]]:
    """The resources of a kind, of one component (api, worker, migrate) when given."""
    return [
        document
        for document in resources(project)
        if document["kind"] == kind and (of is None or component(document) == of)
    ]


def the(project: Path, kind: str, of: str | None = None) -> dict[str, Any]:
    found = find(project, kind, of)
    assert len(found) == 1, f"expected one {kind} {of or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def workloads(project: Path) -> list[dict[str, Any]]:
    return [d for d in resources(project) if d["kind"] in ("Deployment", "Job")]


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = pod["containers"] + pod.get("initContainers", [])
    return containers


def named(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [container for container in all_containers(pod) if container["name"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def api_pod(project: Path) -> dict[str, Any]:
    return pod_spec(the(project, "Deployment", "api"))


def api_container(project: Path) -> dict[str, Any]:
    container = named(api_pod(project), "api")
    assert container is not None
    return container


def test_every_manifest_passes_strict_kubernetes_validation(k8s_project: Path) -> None:
    files = [path for path in manifests(k8s_project) if load_yaml(path)["kind"] not in CUSTOM_KINDS]
    assert files, "no manifests rendered"
    # --strict: an unknown or misspelt field is an error, not silently dropped.
    assert_tool_passes(KUBERNETES_VALIDATE, "--strict", "--quiet", *files)


def test_dashboard_config_map_passes_strict_kubernetes_validation(k8s_project: Path) -> None:
    # The other monitoring manifests are the Prometheus Operator's kinds, not the API's.
    config_map = k8s_project / "deploy" / "monitoring" / "grafana-dashboard.yaml"
    assert_tool_passes(KUBERNETES_VALIDATE, "--strict", "--quiet", config_map)


def test_kustomization_lists_exactly_the_manifests(k8s_project: Path) -> None:
    kustomization = load_yaml(k8s_project / "deploy" / "k8s" / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [path.name for path in manifests(k8s_project)]


def test_manifests_agree_with_the_image(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    uid, gid = image_user(k8s_project)
    pod = api_pod(k8s_project)
    container = api_container(k8s_project)

    assert container["image"].startswith(f"{answers['team']}/{answers['service_name']}:")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": answers["http_port"]}
    assert the(k8s_project, "ConfigMap")["data"]["PORT"] == str(answers["http_port"])

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, f"{probe} probes an unknown port"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert the(k8s_project, "Service")["spec"]["ports"][0]["targetPort"] in ports


def test_every_workload_runs_the_same_image_as_the_same_user(k8s_project: Path) -> None:
    image = api_container(k8s_project)["image"]
    security = api_pod(k8s_project)["securityContext"]
    for workload in workloads(k8s_project):
        pod = pod_spec(workload)
        assert pod["securityContext"] == security, f"{workload['metadata']['name']} runs as another"
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        for container in all_containers(pod):
            assert container["image"] == image, f"{container['name']} runs another image"


def test_manifests_confine_every_container(k8s_project: Path) -> None:
    for workload in workloads(k8s_project):
        pod = pod_spec(workload)
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in all_containers(pod):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            # A read-only root still needs a writable /tmp.
            (tmp,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]]
            assert {"requests", "limits"} <= set(container["resources"])


def test_service_and_disruption_budget_select_only_the_api_pods(k8s_project: Path) -> None:
    deployment = the(k8s_project, "Deployment", "api")["spec"]
    pod_labels = deployment["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["selector"]["matchLabels"],
        "Service": the(k8s_project, "Service")["spec"]["selector"],
        "PodDisruptionBudget": the(k8s_project, "PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"
        ],
    }
    others = [
        workload["spec"]["template"]["metadata"]["labels"]
        for workload in workloads(k8s_project)
        if component(workload) != "api"
    ]
    for kind, selector in selectors.items():
        assert selector, f"{kind} selects every pod in the namespace"
        assert selector.items() <= pod_labels.items(), f"{kind} does not select the pods"
        for labels in others:
            assert not selector.items() <= labels.items(), f"{kind} selects non-API pods"


def test_pods_read_the_configmap_and_secret_of_the_service(k8s_project: Path) -> None:
    expected = {
        "configMapRef": the(k8s_project, "ConfigMap")["metadata"]["name"],
        "secretRef": answers_of(k8s_project)["service_name"],
    }
    for workload in workloads(k8s_project):
        for container in all_containers(pod_spec(workload)):
            sources = {
                kind: source[kind]["name"]
                for source in container["envFrom"]
                for kind in ("configMapRef", "secretRef")
                if kind in source
            }
            assert sources == expected, f"{container['name']} reads other settings"


def env_sources(project: Path, variable: str) -> dict[str, Any]:
    """Where each container gets `variable` from, if it sets it itself."""
    found = {}
    for workload in workloads(project):
        for container in all_containers(pod_spec(workload)):
            for entry in container.get("env", []):
                if entry["name"] == variable:
                    found[container["name"]] = entry
    return found


def database_urls(project: Path) -> dict[str, Any]:
    """Where each container gets DATABASE_URL from, if it sets it itself."""
    return env_sources(project, "DATABASE_URL")


def test_every_process_reaches_the_database(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    database = answers["database"]
    configmap = the(k8s_project, "ConfigMap")["data"]
    containers = [
        container["name"]
        for workload in workloads(k8s_project)
        for container in all_containers(pod_spec(workload))
    ]
    if database == "none":
        assert database_urls(k8s_project) == {}
        assert "DATABASE_URL" not in configmap
    elif database == "postgresql":
        # A credential: from the Secret, and required, so a pod without it does not start.
        required = {
            "valueFrom": {"secretKeyRef": {"name": answers["service_name"], "key": "DATABASE_URL"}},
        }
        assert database_urls(k8s_project) == {
            name: {"name": "DATABASE_URL", **required} for name in containers
        }
        assert "DATABASE_URL" not in configmap
    else:
        # A file on the one volume that the one pod mounts.
        url = configmap["DATABASE_URL"]
        assert url.startswith("sqlite+aiosqlite:////")
        directory = str(Path(url.removeprefix("sqlite+aiosqlite:///")).parent)
        claim = the(k8s_project, "PersistentVolumeClaim")
        deployment = the(k8s_project, "Deployment", "api")
        pod = pod_spec(deployment)
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert pod["securityContext"]["fsGroup"] == image_user(k8s_project)[1]
        (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert [w["metadata"]["name"] for w in workloads(k8s_project)] == [
            deployment["metadata"]["name"]
        ], "SQLite suits one pod; another workload could not share its file"
        for container in all_containers(pod):
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert mounts.get(directory) == volume["name"], f"{container['name']} lacks {directory}"


def test_migrations_run_as_their_own_step(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    jobs = find(k8s_project, "Job", "migrate")
    init = named(api_pod(k8s_project), "migrate")
    if answers["database"] == "none":
        assert (jobs, init) == ([], None)
        return
    if answers["database"] == "postgresql":
        # Once per release, not once per replica.
        (job,) = jobs
        assert init is None
        assert job["spec"]["backoffLimit"] >= 1
        assert job["spec"]["ttlSecondsAfterFinished"] > 0
        assert pod_spec(job)["restartPolicy"] == "Never"
        container = named(pod_spec(job), "migrate")
    else:
        # Before the one pod's API starts; a Job's pod could not share its volume.
        assert jobs == []
        container = init
    assert container is not None
    assert container["command"] == module_command(k8s_project, "migrate")


def assert_serves_only_metrics(container: dict[str, Any]) -> None:
    """One declared port, its metrics, which METRICS_PORT sets; no probe asks it anything."""
    (port,) = container["ports"]
    assert port["name"].endswith("metrics")
    metrics_port = {env["name"]: env.get("value") for env in container["env"]}["METRICS_PORT"]
    assert metrics_port == str(port["containerPort"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "httpGet" not in container.get(probe, {}), f"{probe} probes its metrics port"


def test_worker_serves_only_metrics_and_gets_its_grace_period(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    deployments = find(k8s_project, "Deployment", "worker")
    in_api_pod = named(api_pod(k8s_project), "worker")
    if not answers.get("worker"):
        assert (deployments, in_api_pod) == ([], None)
        return
    if answers["database"] == "sqlite":
        assert deployments == [], "SQLite has no row locks: one worker, beside the API"
        pod, container = api_pod(k8s_project), in_api_pod
    else:
        (deployment,) = deployments
        assert in_api_pod is None
        assert deployment["spec"]["replicas"] >= 2
        pod = pod_spec(deployment)
        container = named(pod, "worker")
    assert container is not None
    assert container["command"] == module_command(k8s_project, "worker")
    assert_serves_only_metrics(container)
    assert pod["terminationGracePeriodSeconds"] > worker_grace_seconds(k8s_project)


def test_relay_runs_once_beside_each_database(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    deployments = find(k8s_project, "Deployment", "relay")
    in_api_pod = named(api_pod(k8s_project), "relay")
    if broker_of(k8s_project) is None or answers["database"] == "none":
        assert (deployments, in_api_pod) == ([], None)
        return
    if answers["database"] == "sqlite":
        assert deployments == [], "SQLite has no row locks: one relay, beside the API"
        container = in_api_pod
    else:
        (deployment,) = deployments
        assert in_api_pod is None
        assert_one_relay(deployment)
        container = named(pod_spec(deployment), "relay")
    assert container is not None
    assert container["command"] == module_command(k8s_project, "relay")
    assert_serves_only_metrics(container)


def test_every_process_reaches_the_broker(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    configmap = the(k8s_project, "ConfigMap")["data"]
    assert "BROKER_URL" not in configmap, "a credential does not belong in the ConfigMap"
    if broker_of(k8s_project) is None:
        assert env_sources(k8s_project, "BROKER_URL") == {}
        return
    containers = {
        container["name"]
        for workload in workloads(k8s_project)
        for container in all_containers(pod_spec(workload))
    }
    # A credential: from the Secret, and required, so a pod without it does not start.
    required = {
        "name": "BROKER_URL",
        "valueFrom": {"secretKeyRef": {"name": answers["service_name"], "key": "BROKER_URL"}},
    }
    assert env_sources(k8s_project, "BROKER_URL") == dict.fromkeys(
        containers - {"migrate"}, required
    )


def test_grace_period_covers_the_pre_stop_sleep_and_the_shutdown(k8s_project: Path) -> None:
    pod = api_pod(k8s_project)
    pre_stop = api_container(k8s_project)["lifecycle"]["preStop"]["sleep"]["seconds"]
    shutdown = literal_default(settings_fields(k8s_project)["shutdown_timeout_seconds"])
    assert isinstance(shutdown, float | int)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + shutdown


# Kubernetes: overlays, autoscaling, network policy and monitoring

OVERLAYS = ("dev", "prod")
# Custom resources: validated against their CustomResourceDefinitions (tests/schemas).
CUSTOM_KINDS = {
    "ScaledObject",
    "TriggerAuthentication",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
}
CRDS = Path(__file__).parent / "schemas" / "crds"
# Where the broker listens, as the settings' default BROKER_URL says.
BROKER_PORTS = {"redis": 6379, "rabbitmq": 5672, "nats": 4222}
# What each KEDA scaler reads from the TriggerAuthentication (KEDA v2.20 scalers).
SCALER_PARAMETERS = {
    "redis-streams": {"address", "password"},
    "rabbitmq": {"host"},
    "nats-jetstream": {"natsServerMonitoringEndpoint"},
    "postgresql": {"connection"},
}
BROKER_SCALERS = {"redis": "redis-streams", "rabbitmq": "rabbitmq", "nats": "nats-jetstream"}


def built_overlay(project: Path, overlay: str) -> list[dict[str, Any]]:
    return build(project / "deploy" / "overlays" / overlay)


def base_resources(project: Path) -> list[dict[str, Any]]:
    return build(project / "deploy" / "k8s")


def every_build(project: Path) -> dict[str, list[dict[str, Any]]]:
    """The base and each overlay, as kustomize builds them."""
    return {
        "base": base_resources(project),
        **{overlay: built_overlay(project, overlay) for overlay in OVERLAYS},
    }


def kind_named(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused where the API server would prune them."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tightened = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        tightened["additionalProperties"] = False
    return tightened


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, _, version = api_version.rpartition("/")
    for path in CRDS.glob("*.yaml"):
        crd = load_yaml(path)
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
            schema: dict[str, Any] = strict(served["schema"]["openAPIV3Schema"])
            return schema
    raise AssertionError(f"no vendored CustomResourceDefinition for {api_version} {kind}")


def assert_matches_its_crd(resource: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(crd_schema(resource["apiVersion"], resource["kind"]))
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(resource)
    ]
    name = f"{resource['kind']} {resource['metadata']['name']}"
    assert errors == [], f"{name} does not match its CustomResourceDefinition:\n" + "\n".join(
        errors
    )


def monitoring(project: Path) -> list[dict[str, Any]]:
    """The Prometheus Operator's objects in deploy/monitoring/.

    The dashboard's ConfigMap beside them is a core kind, validated on its own.
    """
    resources = (
        load_yaml(path) for path in sorted((project / "deploy" / "monitoring").glob("*.yaml"))
    )
    return [resource for resource in resources if resource["kind"] != "ConfigMap"]


def core_kind_files(project: Path, directory: Path) -> list[Path]:
    """Each core-kind resource of the base and the overlays as built, written to a file."""
    files = []
    for name, resources in every_build(project).items():
        for index, resource in enumerate(resources):
            if resource["kind"] not in CUSTOM_KINDS:
                path = directory / f"{name}-{index}-{resource['kind']}.yaml"
                path.write_text(yaml.safe_dump(resource))
                files.append(path)
    return files


def custom_resources(project: Path) -> list[dict[str, Any]]:
    """The custom resources of the base, the overlays as built and deploy/monitoring/."""
    custom = [
        resource
        for resources in every_build(project).values()
        for resource in resources
        if resource["kind"] in CUSTOM_KINDS
    ]
    return custom + monitoring(project)


def test_base_and_overlays_as_built_pass_strict_kubernetes_validation(
    k8s_project: Path, tmp_path: Path
) -> None:
    files = core_kind_files(k8s_project, tmp_path)
    assert_tool_passes(KUBERNETES_VALIDATE, "--strict", "--quiet", *files)


def test_custom_resources_match_their_published_definitions(k8s_project: Path) -> None:
    for resource in custom_resources(k8s_project):
        assert resource["kind"] in CUSTOM_KINDS
        assert_matches_its_crd(resource)


def test_the_crd_check_refuses_a_misspelt_field() -> None:
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "minReplicas": 1, "triggers": []},
    }
    with pytest.raises(AssertionError, match="minReplicas"):
        assert_matches_its_crd(scaled)


def test_the_base_names_no_environment(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    for resource in base_resources(k8s_project):
        assert "namespace" not in resource["metadata"], "the overlays choose the namespace"
    for container in containers_in(base_resources(k8s_project)):
        assert container["image"] == f"{answers['team']}/{answers['service_name']}:0.1.0"


def test_overlays_differ_in_namespace_image_and_resources(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    image = f"{answers['team']}/{answers['service_name']}"
    builds = {overlay: built_overlay(k8s_project, overlay) for overlay in OVERLAYS}
    namespaces, tags, requests = {}, {}, {}
    for overlay, resources in builds.items():
        (namespace,) = {r["metadata"]["namespace"] for r in resources}
        namespaces[overlay] = namespace
        (tag,) = {c["image"] for c in containers_in(resources)}
        assert tag.rpartition(":")[0].endswith(f"/{image}"), "the overlay's registry, same image"
        tags[overlay] = tag
        api = named(
            pod_spec(kind_named(resources, "Deployment", answers["service_name"]) or {}), "api"
        )
        assert api is not None
        requests[overlay] = api["resources"]["requests"]
    assert len(set(namespaces.values())) == len(OVERLAYS)
    assert len(set(tags.values())) == len(OVERLAYS)
    assert requests["dev"] != requests["prod"]


def autoscaling_bounds(
    resources: list[dict[str, Any]], project: Path
) -> dict[str, tuple[int, int]]:
    """Each autoscaled Deployment's (min, max) replicas, by component."""
    name = answers_of(project)["service_name"]
    bounds = {}
    autoscaler = kind_named(resources, "HorizontalPodAutoscaler", name)
    if autoscaler:
        bounds["api"] = (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"])
    scaled = kind_named(resources, "ScaledObject", f"{name}-worker")
    if scaled:
        bounds["worker"] = (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"])
    return bounds


def test_autoscalers_target_the_api_and_the_worker(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    name = answers["service_name"]
    resources = base_resources(k8s_project)
    autoscaler = kind_named(resources, "HorizontalPodAutoscaler", name)
    scaled = kind_named(resources, "ScaledObject", f"{name}-worker")
    if answers["database"] == "sqlite":
        assert (autoscaler, scaled) == (None, None), "SQLite runs one pod"
        return
    assert autoscaler is not None
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": the(k8s_project, "Deployment", "api")["metadata"]["name"],
    }
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu", "CPU utilisation needs the CPU request set"
    assert "cpu" in api_container(k8s_project)["resources"]["requests"]
    if not answers.get("worker"):
        assert scaled is None
        return
    assert scaled is not None
    worker = the(k8s_project, "Deployment", "worker")
    assert scaled["spec"]["scaleTargetRef"] == {"name": worker["metadata"]["name"]}


def test_overlays_start_at_the_autoscaler_minimum_and_prod_scales_further(
    k8s_project: Path,
) -> None:
    name = answers_of(k8s_project)["service_name"]
    deployments = {"api": name, "worker": f"{name}-worker"}
    bounds = {}
    for overlay in OVERLAYS:
        resources = built_overlay(k8s_project, overlay)
        bounds[overlay] = autoscaling_bounds(resources, k8s_project)
        for component, (low, high) in bounds[overlay].items():
            assert 1 <= low < high
            deployment = kind_named(resources, "Deployment", deployments[component])
            assert deployment is not None
            assert deployment["spec"]["replicas"] == low, f"{overlay} {component} starts elsewhere"
    assert (
        bounds["dev"].keys()
        == bounds["prod"].keys()
        == autoscaling_bounds(base_resources(k8s_project), k8s_project).keys()
    )
    for component in bounds["prod"]:
        assert bounds["prod"][component] > bounds["dev"][component]


def assert_one_relay(deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["replicas"] == 1, "one relay publishes in commit order"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "two relays would overlap"


def test_exactly_one_relay_runs_in_every_environment(k8s_project: Path) -> None:
    name = f"{answers_of(k8s_project)['service_name']}-relay"
    for environment, resources in every_build(k8s_project).items():
        relay = kind_named(resources, "Deployment", name)
        if relay is None:
            continue
        assert_one_relay(relay)
        targets = {
            r["spec"]["scaleTargetRef"]["name"]
            for r in resources
            if r["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
        }
        assert name not in targets, f"{environment} autoscales the relay"


def is_constant_or_stdlib_import(node: ast.stmt) -> bool:
    """`import hashlib`, `import re`, or a module constant: `NAME = literal or call`."""
    if isinstance(node, ast.Import):
        return all(alias.name in ("hashlib", "re") for alias in node.names)
    return (
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant | ast.Call)
        and all(isinstance(target, ast.Name) and target.id.isupper() for target in node.targets)
    )


def rendered_function(path: Path, name: str) -> Callable[..., Any]:
    """A function of a rendered module, run with the module's constants and stdlib imports."""
    tree = ast.parse(path.read_text())
    kept = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name == name)
        or is_constant_or_stdlib_import(node)
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(path), "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function


def consumed_topics(project: Path) -> list[str]:
    """The topics the worker consumes for the example feature (`platform/contracts.py`)."""
    answers = answers_of(project)
    if not answers.get("example_feature"):
        return []
    package = project / "src" / answers["package_name"]
    events = (package / "features" / "jobs" / "events.py").read_text()
    types = dict(re.findall(r"class (\w+)\(Event\):.*?type = \"([\w.]+)\"", events, re.S))
    contracts = (package / "platform" / "contracts.py").read_text()
    consumed = re.search(r"registry\.consumes\(([^)]*)\)", contracts)
    assert consumed is not None
    return [types[name.strip()] for name in consumed[1].split(",")]


def test_the_worker_scales_on_its_own_backlog(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    name = answers["service_name"]
    scaled = kind_named(base_resources(k8s_project), "ScaledObject", f"{name}-worker")
    if scaled is None:
        return
    triggers = scaled["spec"]["triggers"]
    broker = broker_of(k8s_project)
    # EVENTS_NAMESPACE and EVENTS_CONSUMER_GROUP as the settings default them.
    fields = settings_fields(k8s_project)
    if broker is None:
        # The jobs table: the worker's own due condition, on columns the model has.
        (trigger,) = triggers
        assert trigger["type"] == "postgresql"
        query = " ".join(trigger["metadata"]["query"].split())
        jobs = k8s_project / "src" / answers["package_name"] / "features" / "jobs"
        models = (jobs / "models.py").read_text()
        assert query.startswith("SELECT count(*) FROM jobs WHERE")
        assert '__tablename__ = "jobs"' in models
        columns = re.findall(r"\b([a-z_]+) (?:<=|=|<) ", query)
        assert columns == ["status", "next_run_at", "status"]
        for column in columns:
            assert re.search(rf"^    {column}: Mapped", models, re.M), column
        for status in re.findall(r"status = '(\w+)'", query):
            assert f'{status} = "{status}"' in models, f"no job status {status}"
        repository = (jobs / "repository.py").read_text()
        assert "Job.status == JobStatus.PENDING, Job.next_run_at <= now" in repository
        assert "(status = 'PENDING' AND next_run_at <= now())" in query
        assert "OR status = 'RUNNING'" in query, "a running job keeps its worker busy"
        return
    namespace = group = literal_default(fields["events_namespace"])
    assert literal_default(fields["events_consumer_group"]) == group
    topics = consumed_topics(k8s_project)
    if not topics:
        # The team names the topics in events.py; until then, CPU.
        assert [t["type"] for t in triggers] == ["cpu"]
        return
    assert [t["type"] for t in triggers] == [BROKER_SCALERS[broker]] * len(topics)
    broker_module = k8s_project / "src" / answers["package_name"] / "platform" / "broker.py"
    for topic, trigger in zip(topics, triggers, strict=True):
        metadata = trigger["metadata"]
        if broker == "redis":
            assert metadata["stream"] == f"{namespace}:{topic}"
            assert metadata["consumerGroup"] == group
            assert "lagCount" in metadata, "the lag is the backlog; pending is what is in hand"
        elif broker == "rabbitmq":
            assert metadata["queueName"] == f"{namespace}.{group}.{topic}"
            assert metadata["mode"] == "QueueLength"
        else:
            stream_name = rendered_function(broker_module, "stream_name")
            consumer_name = rendered_function(broker_module, "consumer_name")
            assert metadata["stream"] == stream_name(namespace)
            assert metadata["consumer"] == consumer_name(group, topic)


def test_scalers_authenticate_from_a_secret_of_their_own(k8s_project: Path) -> None:
    name = answers_of(k8s_project)["service_name"]
    resources = base_resources(k8s_project)
    scaled = kind_named(resources, "ScaledObject", f"{name}-worker")
    authentication = kind_named(resources, "TriggerAuthentication", f"{name}-worker")
    if scaled is None:
        assert authentication is None
        return
    assert authentication is not None
    references = authentication["spec"]["secretTargetRef"]
    assert {ref["name"] for ref in references} == {f"{name}-autoscaling"}, (
        "the pods' own Secret is not KEDA's to read"
    )
    parameters = {ref["parameter"] for ref in references}
    broker = broker_of(k8s_project)
    expected = SCALER_PARAMETERS[BROKER_SCALERS[broker] if broker else "postgresql"]
    assert parameters == expected
    for trigger in scaled["spec"]["triggers"]:
        if trigger["type"] == "cpu":
            continue
        assert trigger["authenticationRef"] == {"name": authentication["metadata"]["name"]}
        # Credentials come from the Secret, never from the manifest.
        assert not SCALER_PARAMETERS[trigger["type"]] & set(trigger["metadata"])


def network_policies(project: Path) -> dict[str, dict[str, Any]]:
    name = answers_of(project)["service_name"]
    return {
        policy["metadata"]["name"].removeprefix(name).lstrip("-") or "default": policy
        for policy in find(project, "NetworkPolicy")
    }


def declared_ports(project: Path) -> dict[str, set[str]]:
    """Each workload component's named container ports."""
    ports: dict[str, set[str]] = {}
    for workload in workloads(project):
        for container in all_containers(pod_spec(workload)):
            for port in container.get("ports", []):
                ports.setdefault(component(workload) or "", set()).add(port["name"])
    return ports


def test_network_policy_denies_by_default_and_allows_what_the_variant_uses(
    k8s_project: Path,
) -> None:
    answers = answers_of(k8s_project)
    name = answers["service_name"]
    policies = network_policies(k8s_project)
    assert set(policies) == {"default", "from-ingress-controller", "from-prometheus"}
    default = policies["default"]["spec"]
    assert default["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": name}}
    assert default["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in default, "nothing comes in but what the other policies allow"
    for workload in workloads(k8s_project):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels.get("app.kubernetes.io/part-of") == name, "a pod the policy misses"
    allowed = {
        (port["port"], port["protocol"]) for rule in default["egress"] for port in rule["ports"]
    }
    assert all("to" not in rule for rule in default["egress"][:1])
    expected = {(53, "UDP"), (53, "TCP")}
    if answers["database"] == "postgresql":
        expected.add((5432, "TCP"))
    broker = broker_of(k8s_project)
    if broker:
        assert default_broker_url(k8s_project).port == BROKER_PORTS[broker]
        expected.add((BROKER_PORTS[broker], "TCP"))
    if answers.get("auth") == "oidc":
        expected.add((443, "TCP"))
    assert allowed == expected


def test_network_policy_lets_in_the_ingress_controller_and_prometheus_only(
    k8s_project: Path,
) -> None:
    policies = network_policies(k8s_project)
    ports = declared_ports(k8s_project)
    from_controller = policies["from-ingress-controller"]["spec"]
    api_labels = the(k8s_project, "Deployment", "api")["spec"]["selector"]["matchLabels"]
    assert from_controller["podSelector"] == {"matchLabels": api_labels}
    (rule,) = from_controller["ingress"]
    assert [p["port"] for p in rule["ports"]] == ["http"]
    assert "http" in ports["api"]
    (rule,) = policies["from-prometheus"]["spec"]["ingress"]
    scraped = {p["port"] for p in rule["ports"]}
    everything = set().union(*ports.values())
    assert scraped == everything, "Prometheus scrapes every declared port, which are all metrics"
    for policy in policies.values():
        for ingress in policy["spec"].get("ingress", []):
            (source,) = ingress["from"]
            assert set(source) == {"namespaceSelector"}, "by namespace labels, set in the overlays"


def test_overlays_choose_the_namespaces_traffic_comes_from(k8s_project: Path) -> None:
    name = answers_of(k8s_project)["service_name"]
    base = {r["metadata"]["name"]: r for r in find(k8s_project, "NetworkPolicy")}
    for overlay in OVERLAYS:
        resources = built_overlay(k8s_project, overlay)
        for suffix in ("from-ingress-controller", "from-prometheus"):
            policy = kind_named(resources, "NetworkPolicy", f"{name}-{suffix}")
            assert policy is not None
            # The patch restates the rule (a list without a merge key): the ports must survive.
            ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
            base_ports = [
                p["port"]
                for rule in base[f"{name}-{suffix}"]["spec"]["ingress"]
                for p in rule["ports"]
            ]
            assert ports == base_ports, f"{overlay} lets in other ports than the base"


def assert_restricted(pod: dict[str, Any]) -> None:
    """Pod Security Standards, restricted profile: the fields it requires."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in all_containers(pod):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "add" not in security["capabilities"]
        assert "privileged" not in security and "runAsUser" not in security
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= {
            "emptyDir",
            "persistentVolumeClaim",
            "configMap",
            "secret",
        }


def test_every_environment_meets_the_restricted_pod_security_standard(k8s_project: Path) -> None:
    for resources in every_build(k8s_project).values():
        for resource in resources:
            if resource["kind"] in ("Deployment", "Job"):
                assert_restricted(pod_spec(resource))


def test_prod_has_a_tls_ingress_to_the_api_service(k8s_project: Path) -> None:
    assert [r for r in built_overlay(k8s_project, "dev") if r["kind"] == "Ingress"] == []
    (ingress,) = [r for r in built_overlay(k8s_project, "prod") if r["kind"] == "Ingress"]
    service = the(k8s_project, "Service")
    (rule,) = ingress["spec"]["rules"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == [rule["host"]]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}


def test_every_process_is_scraped_once(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    resources = {r["kind"]: r for r in monitoring(k8s_project)}
    assert set(resources) <= {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    service = the(k8s_project, "Service")
    service_monitor = resources["ServiceMonitor"]["spec"]
    selector = service_monitor["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in service_monitor["endpoints"]] == ["http"]
    assert service["spec"]["ports"][0]["name"] == "http"
    metrics_ports = set().union(*declared_ports(k8s_project).values()) - {"http"}
    if not metrics_ports:
        assert "PodMonitor" not in resources, "a PodMonitor with nothing to scrape"
        return
    pod_monitor = resources["PodMonitor"]["spec"]
    ports = [endpoint["port"] for endpoint in pod_monitor["podMetricsEndpoints"]]
    assert sorted(ports) == sorted(metrics_ports), "the API is the ServiceMonitor's"
    for endpoint in service_monitor["endpoints"] + pod_monitor["podMetricsEndpoints"]:
        relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
        assert relabel["service"]["replacement"] == answers["service_name"]
        assert "component" in relabel


# Settings: .env.example, compose and the ConfigMap against the settings classes


def module_constants(tree: ast.Module) -> dict[str, ast.Constant]:
    """Module-level `NAME = "literal"` assignments, which field defaults may name."""
    constants = {}
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(statement.value, ast.Constant)
        ):
            constants[statement.targets[0].id] = statement.value
    return constants


def resolve_default(value: ast.expr | None, constants: dict[str, ast.Constant]) -> ast.expr | None:
    """`SecretStr(x)` means x; a module constant means its value."""
    if (
        isinstance(value, ast.Call)
        and ast.unparse(value.func) == "SecretStr"
        and len(value.args) == 1
        and not value.keywords
    ):
        value = value.args[0]
    if isinstance(value, ast.Name) and value.id in constants:
        return constants[value.id]
    return value


def settings_fields(project: Path) -> dict[str, ast.expr | None]:
    """Every field of the rendered settings classes, with its default expression."""
    package = project / "src" / answers_of(project)["package_name"]
    fields: dict[str, ast.expr | None] = {}
    for module, class_name in SETTINGS_CLASSES:
        tree = ast.parse((package / module).read_text())
        constants = module_constants(tree)
        (settings_class,) = [
            node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name
        ]
        for statement in settings_class.body:
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and "ClassVar" not in ast.unparse(statement.annotation)
            ):
                fields[statement.target.id] = resolve_default(statement.value, constants)
    return fields


class NoLiteralDefault(Exception):
    """The default is computed; only the name can be checked."""


def literal_default(value: ast.expr | None) -> Any:
    """The field's default: `x: T = literal`, `Field(default=literal)` or a list factory."""
    if isinstance(value, ast.Call) and ast.unparse(value.func) == "production_secret":
        return None  # unset until the environment provides it
    if isinstance(value, ast.Call) and ast.unparse(value.func) == "Field":
        keywords = {keyword.arg: keyword.value for keyword in value.keywords}
        if "default" in keywords:
            value = keywords["default"]
        elif keywords.get("default_factory") is not None:
            if ast.unparse(keywords["default_factory"]) == "list":
                return []
            raise NoLiteralDefault
        else:
            raise NoLiteralDefault
    if value is None:
        raise NoLiteralDefault
    try:
        return ast.literal_eval(value)
    except ValueError as error:
        raise NoLiteralDefault from error


def env_example(project: Path) -> dict[str, re.Match[str]]:
    settings: dict[str, re.Match[str]] = {}
    for line in (project / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line)
        if match:
            key = match["key"].lower()
            assert key not in settings, f"{match['key']} is in .env.example twice"
            settings[key] = match
    return settings


def parses_as(text: str, default: Any) -> bool:
    """Whether the environment value means the same as the Python default."""
    if isinstance(default, bool):
        return text.lower() == str(default).lower()
    if isinstance(default, int | float):
        return float(text) == default
    if isinstance(default, list):
        return bool(json.loads(text) == default)
    return bool(text == default)


def test_env_example_lists_every_setting_and_nothing_else(project: Path) -> None:
    fields = set(settings_fields(project))
    listed = set(env_example(project))
    assert fields - listed == set(), "settings missing from .env.example"
    assert listed - fields == set(), ".env.example lists settings that do not exist"


def test_env_example_shows_each_default(project: Path) -> None:
    listed = env_example(project)
    for name, value in settings_fields(project).items():
        line = listed.get(name)
        if line is None:
            continue  # reported by the test above
        try:
            default = literal_default(value)
        except NoLiteralDefault:
            continue
        if default is None:
            # An empty value is not "unset": it is "" (or fails to parse, for a bool).
            assert line["unset"], f"{line['key']} is unset by default: comment it out"
        else:
            assert not line["unset"], f"{line['key']} has a default: show it uncommented"
            assert parses_as(line["value"], default), (
                f"{line['key']}={line['value']} is not the default {default!r}"
            )


def test_compose_and_configmap_set_only_real_settings(project: Path) -> None:
    fields = {name.upper() for name in settings_fields(project)}
    services = compose_services(project)
    for name in expected_app_services(answers_of(project)):
        compose = services[name]["environment"]
        assert set(compose) - fields == set(), f"compose sets variables {name} does not read"
    if answers_of(project)["kubernetes"]:
        configmap = load_yaml(project / "deploy" / "k8s" / "configmap.yaml")["data"]
        assert set(configmap) - fields == set(), "the ConfigMap sets variables no setting reads"
        for variable in database_urls(project).values():
            assert variable["name"] in fields
        for workload in workloads(project):
            for container in all_containers(pod_spec(workload)):
                for variable in container.get("env", []):
                    assert variable["name"] in fields, f"{container['name']} sets a non-setting"


# checkov: the image, the CI and the manifests, together


CHECKOV_CI_FRAMEWORKS = {"github": "github_actions", "gitlab": "gitlab_ci"}


def checkov_files(project: Path, built: Path) -> list[Path]:
    """Every file a variant ships, the overlays written as built into `built`.

    The overlays are checked as built: a patch alone is not a resource, and the
    base's skip annotations come through the build. The monitoring objects are
    applied as they are.
    """
    files = [project / "Dockerfile", project / "compose.yaml", *github_workflows(project)]
    files += project.glob(".gitlab-ci.yml")
    if answers_of(project)["kubernetes"]:
        files += sorted((project / "deploy" / "monitoring").glob("*.yaml"))
        for overlay in OVERLAYS:
            manifests = built / f"{overlay}.yaml"
            manifests.write_text(yaml.safe_dump_all(built_overlay(project, overlay)))
            files.append(manifests)
    return files


def run_checkov(files: list[Path]) -> list[dict[str, Any]]:
    """checkov's reports on the files, one per framework, from one run."""
    uv = shutil.which("uv")
    assert uv, "uv runs checkov, and is not on PATH"
    checkov = (uv, "tool", "run", "--from", f"checkov=={CHECKOV_VERSION}", "checkov")
    result = run_tool(*checkov, "--skip-download", "--output", "json", "--file", *files)
    assert result.stdout.startswith(("[", "{")), f"checkov failed:\n{result.stderr}"
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def checkov_findings(projects: dict[str, Path], scratch: Path) -> list[str]:
    """checkov over every file each variant ships: what it finds, by variant."""
    files: list[Path] = []
    expected: set[tuple[str, str]] = set()
    for name, project in projects.items():
        built = scratch / name
        built.mkdir()
        files += checkov_files(project, built)
        answers = answers_of(project)
        expected.add((name, "dockerfile"))
        if answers["ci"] != "none":
            expected.add((name, CHECKOV_CI_FRAMEWORKS[answers["ci"]]))
        if answers["kubernetes"]:
            expected.add((name, "kubernetes"))
    findings = []
    checked: set[tuple[str, str]] = set()
    for report in run_checkov(files):
        check_type = report["check_type"]
        results = report["results"]
        for check in results["passed_checks"] + results["failed_checks"]:
            checked.add((variant_of(check["file_path"], projects), check_type))
        findings += [
            f"{variant_of(check['file_path'], projects)}: {check['check_id']} failed on "
            f"{check['resource']} in {Path(check['file_path']).name}"
            for check in results["failed_checks"]
        ]
        findings += [
            f"{variant_of(check['file_path'], projects)}: {check['check_id']} skipped "
            "without a reason"
            for check in results["skipped_checks"]
            if not check["check_result"].get("suppress_comment", "").strip()
        ]
        if report["summary"]["parsing_errors"]:
            unread = results.get("parsing_errors") or ["(unnamed)"]
            findings += [
                f"{variant_of(path, projects)}: checkov's {check_type} could not read {path}"
                for path in unread
            ]
    findings += [
        f"{name}: checkov left out its {check_type} files"
        for name, check_type in sorted(expected - checked)
    ]
    return findings


def variant_of(path: str | Path, projects: dict[str, Path]) -> str:
    """The variant a file a tool reports on belongs to, by the directory it is in."""
    found = [part for part in Path(path).parts if part in projects]
    return found[0] if found else f"(no variant: {path})"


def test_checkov_passes_everything_the_variants_ship(
    render: Callable[[str], Path], tmp_path: Path
) -> None:
    # One run over every variant: checkov takes seconds to start.
    assert checkov_findings({name: render(name) for name in SHIPPED}, tmp_path) == []
