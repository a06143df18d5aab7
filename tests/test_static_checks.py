"""Static checks of what cannot run on the test machine: image, compose, CI and manifests.

There is no Docker engine, CI runner or cluster here, so these files are linted
(hadolint) and validated against their published schemas (check-jsonschema,
kubernetes-validate in strict mode), and the values they must share (the port,
the container user, the package, the settings) are checked to agree with the
answers and with each other.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]

# The tools come from this repository's own environment, the one running pytest.
TOOLS = Path(sys.executable).parent
HADOLINT = TOOLS / "hadolint"
CHECK_JSONSCHEMA = TOOLS / "check-jsonschema"
KUBERNETES_VALIDATE = TOOLS / "kubernetes-validate"

COMMON_ANSWERS = {
    "service_name": "orders-api",
    "description": "Takes and tracks orders",
    "team": "commerce",
}
# Each CI provider and both manifest answers occur; the ports differ from the
# default and from each other, so a port written into a file by hand shows up.
VARIANTS: dict[str, dict[str, Any]] = {
    "github-k8s": {**COMMON_ANSWERS, "http_port": 8123, "ci": "github", "kubernetes": True},
    "gitlab-k8s": {**COMMON_ANSWERS, "http_port": 9050, "ci": "gitlab", "kubernetes": True},
    "no-ci": {**COMMON_ANSWERS, "ci": "none", "kubernetes": False},
}
ALL = list(VARIANTS)
WITH_KUBERNETES = [name for name, answers in VARIANTS.items() if answers["kubernetes"]]

# A setting in .env.example: `KEY=value`, or `# KEY=value` for one unset by default.
ENV_LINE = re.compile(r"^(?P<unset># )?(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
SETTINGS_CLASSES = (("platform/settings.py", "PlatformSettings"), ("settings.py", "Settings"))


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Renders a variant on first use and hands out the same tree afterwards."""
    rendered: dict[str, Path] = {}

    def render_variant(name: str) -> Path:
        if name not in rendered:
            destination = tmp_path_factory.mktemp(name)
            run_copy(
                str(TEMPLATE_ROOT),
                str(destination),
                data=VARIANTS[name],
                defaults=True,
                unsafe=True,
                quiet=True,
                vcs_ref="HEAD",
            )
            rendered[name] = destination
        return rendered[name]

    return render_variant


@pytest.fixture(params=ALL)
def project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
    return render(request.param)


@pytest.fixture(params=WITH_KUBERNETES)
def k8s_project(request: pytest.FixtureRequest, render: Callable[[str], Path]) -> Path:
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


# CI


def test_github_workflow_matches_its_schemas(render: Callable[[str], Path]) -> None:
    workflow = render("github-k8s") / ".github" / "workflows" / "ci.yml"
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        assert_tool_passes(CHECK_JSONSCHEMA, "--builtin-schema", schema, workflow)


def test_gitlab_ci_matches_its_schema(render: Callable[[str], Path]) -> None:
    pipeline = render("gitlab-k8s") / ".gitlab-ci.yml"
    assert_tool_passes(CHECK_JSONSCHEMA, "--builtin-schema", "vendor.gitlab-ci", pipeline)


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


def test_github_workflow_runs_every_check(render: Callable[[str], Path]) -> None:
    workflow = load_yaml(render("github-k8s") / ".github" / "workflows" / "ci.yml")
    lines = {
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    }
    assert missing_commands(lines) == []


def test_gitlab_pipeline_runs_every_check(render: Callable[[str], Path]) -> None:
    pipeline = load_yaml(render("gitlab-k8s") / ".gitlab-ci.yml")
    lines = {
        line
        for job in pipeline.values()
        if isinstance(job, dict)
        for key in ("script", "before_script")
        for line in job.get(key, [])
    }
    assert missing_commands(lines) == []


# Kubernetes


def manifests(project: Path) -> Iterator[Path]:
    """Every Kubernetes resource file (the Kustomization is kustomize's, not the API's)."""
    for path in sorted((project / "deploy" / "k8s").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield path


def resources(project: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in manifests(project):
        document = load_yaml(path)
        found[document["kind"]] = document
    return found


def test_every_manifest_passes_strict_kubernetes_validation(k8s_project: Path) -> None:
    files = list(manifests(k8s_project))
    assert files, "no manifests rendered"
    # --strict: an unknown or misspelt field is an error, not silently dropped.
    assert_tool_passes(KUBERNETES_VALIDATE, "--strict", "--quiet", *files)


def test_kustomization_lists_exactly_the_manifests(k8s_project: Path) -> None:
    kustomization = load_yaml(k8s_project / "deploy" / "k8s" / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [path.name for path in manifests(k8s_project)]


def test_manifests_agree_with_the_image(k8s_project: Path) -> None:
    answers = answers_of(k8s_project)
    uid, gid = image_user(k8s_project)
    found = resources(k8s_project)
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert container["image"].startswith(f"{answers['team']}/{answers['service_name']}:")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": answers["http_port"]}
    assert found["ConfigMap"]["data"]["PORT"] == str(answers["http_port"])

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, f"{probe} probes an unknown port"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert found["Service"]["spec"]["ports"][0]["targetPort"] in ports


def test_manifests_confine_the_container(k8s_project: Path) -> None:
    pod = resources(k8s_project)["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    # A read-only root still needs a writable /tmp.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (tmp,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    assert {"requests", "limits"} <= set(container["resources"])


def test_service_and_disruption_budget_select_the_deployments_pods(k8s_project: Path) -> None:
    found = resources(k8s_project)
    deployment = found["Deployment"]["spec"]
    pod_labels = deployment["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["selector"]["matchLabels"],
        "Service": found["Service"]["spec"]["selector"],
        "PodDisruptionBudget": found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector, f"{kind} selects every pod in the namespace"
        assert selector.items() <= pod_labels.items(), f"{kind} does not select the pods"


def test_pods_read_the_configmap_and_secret_of_the_service(k8s_project: Path) -> None:
    found = resources(k8s_project)
    (container,) = found["Deployment"]["spec"]["template"]["spec"]["containers"]
    sources = {
        kind: source[kind]["name"]
        for source in container["envFrom"]
        for kind in ("configMapRef", "secretRef")
        if kind in source
    }
    assert sources == {
        "configMapRef": found["ConfigMap"]["metadata"]["name"],
        "secretRef": answers_of(k8s_project)["service_name"],
    }


def test_grace_period_covers_the_pre_stop_sleep_and_the_shutdown(k8s_project: Path) -> None:
    pod = resources(k8s_project)["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    shutdown = literal_default(settings_fields(k8s_project)["shutdown_timeout_seconds"])
    assert isinstance(shutdown, float | int)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + shutdown


# Settings: .env.example, compose and the ConfigMap against the settings classes


def settings_fields(project: Path) -> dict[str, ast.expr | None]:
    """Every field of the rendered settings classes, with its default expression."""
    package = project / "src" / answers_of(project)["package_name"]
    fields: dict[str, ast.expr | None] = {}
    for module, class_name in SETTINGS_CLASSES:
        tree = ast.parse((package / module).read_text())
        (settings_class,) = [
            node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name
        ]
        for statement in settings_class.body:
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and "ClassVar" not in ast.unparse(statement.annotation)
            ):
                fields[statement.target.id] = statement.value
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


def test_compose_and_configmap_set_only_real_settings(render: Callable[[str], Path]) -> None:
    project = render("github-k8s")
    fields = {name.upper() for name in settings_fields(project)}
    compose = load_yaml(project / "compose.yaml")["services"]["api"]["environment"]
    assert set(compose) - fields == set(), "compose sets variables no setting reads"
    configmap = load_yaml(project / "deploy" / "k8s" / "configmap.yaml")["data"]
    assert set(configmap) - fields == set(), "the ConfigMap sets variables no setting reads"
