"""The deploy checks of tests/test_static_checks.py, on every code variant that ships.

Every code variant (tests/matrix.py `code_variants`, with the CI and Kubernetes
answers assigned there) that has a CI provider or Kubernetes passes: checkov
over everything it ships, kubernetes-validate in strict mode over the base and
each overlay as built, its custom resources against their vendored
CustomResourceDefinitions, zizmor over its GitHub workflows and
check-jsonschema over its CI files. The values the files share are checked
against the answers on the hand-picked variants of tests/test_static_checks.py.

The checks batch: each tool starts once per chunk of variants, over the files
of all of them (checkov alone takes about 7 s to start), and every finding is
traced back to its variant by the directory it is rendered in. The chunks
split the work between the test workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matrix import code_variants
from renders import rendered_once
from test_static_checks import (
    CHECK_JSONSCHEMA,
    GITHUB_WORKFLOW_SCHEMAS,
    KUBERNETES_VALIDATE,
    ZIZMOR,
    answers_of,
    assert_matches_its_crd,
    checkov_findings,
    core_kind_files,
    custom_resources,
    github_workflows,
    run_tool,
)

SHIPPED = [
    variant
    for variant in code_variants()
    if variant.data["ci"] != "none" or variant.data["kubernetes"]
]
# Enough chunks that both workers stay busy, few enough that start-up stays small.
CHUNKS = 6
CHUNKED = [SHIPPED[index::CHUNKS] for index in range(CHUNKS)]

Projects = dict[str, Path]


def test_every_code_variant_that_ships_is_in_a_chunk() -> None:
    assert sorted(v.id for chunk in CHUNKED for v in chunk) == sorted(v.id for v in SHIPPED)
    assert {v.data["ci"] for v in SHIPPED} == {"none", "github", "gitlab"}
    assert {v.data["kubernetes"] for v in SHIPPED} == {False, True}


@pytest.fixture(params=range(CHUNKS), ids=lambda index: f"chunk{index}")
def chunk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Projects:
    """The chunk's variants, each in a directory named by its id, rendered once per run."""
    return {
        variant.id: rendered_once(tmp_path_factory, variant) for variant in CHUNKED[request.param]
    }


def with_answer(projects: Projects, question: str, *values: Any) -> Projects:
    return {
        name: project
        for name, project in projects.items()
        if answers_of(project)[question] in values
    }


def assert_batch_passes(projects: Projects, *command: str | Path) -> None:
    """One run of a tool over files of many variants; a failure names the variants."""
    result = run_tool(*command)
    output = result.stdout + result.stderr
    failing = sorted(name for name in projects if name in output)
    assert result.returncode == 0, f"{Path(command[0]).name} failed for {failing}:\n{output}"


def test_checkov_passes_everything_every_variant_ships(chunk: Projects, tmp_path: Path) -> None:
    assert checkov_findings(chunk, tmp_path) == []


def test_every_variant_passes_strict_kubernetes_validation(chunk: Projects, tmp_path: Path) -> None:
    files = []
    for name, project in with_answer(chunk, "kubernetes", True).items():
        directory = tmp_path / name
        directory.mkdir()
        files += core_kind_files(project, directory)
        files.append(project / "deploy" / "monitoring" / "grafana-dashboard.yaml")
    assert files, "no variant in the chunk has Kubernetes"
    assert_batch_passes(chunk, KUBERNETES_VALIDATE, "--strict", "--quiet", *files)


def test_every_variant_s_custom_resources_match_their_definitions(chunk: Projects) -> None:
    mismatches = []
    for name, project in with_answer(chunk, "kubernetes", True).items():
        for resource in custom_resources(project):
            try:
                assert_matches_its_crd(resource)
            except AssertionError as error:
                mismatches.append(f"{name}: {error}")
    assert mismatches == []


def test_every_variant_s_github_workflows_pass_zizmor_and_their_schemas(
    chunk: Projects,
) -> None:
    github = with_answer(chunk, "ci", "github")
    workflows = [path for project in github.values() for path in github_workflows(project)]
    assert len(workflows) == 2 * len(github), "a variant without both workflows"
    # Offline: the audits that ask GitHub's API about the pinned commits cannot run here.
    assert_batch_passes(github, ZIZMOR, "--offline", *workflows)
    for schema in GITHUB_WORKFLOW_SCHEMAS:
        assert_batch_passes(github, CHECK_JSONSCHEMA, "--builtin-schema", schema, *workflows)


def test_every_variant_s_gitlab_pipeline_matches_its_schema(chunk: Projects) -> None:
    gitlab = with_answer(chunk, "ci", "gitlab")
    pipelines = [project / ".gitlab-ci.yml" for project in gitlab.values()]
    assert pipelines, "no variant in the chunk has GitLab CI"
    assert_batch_passes(
        gitlab, CHECK_JSONSCHEMA, "--builtin-schema", "vendor.gitlab-ci", *pipelines
    )
