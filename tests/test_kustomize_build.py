"""The overlay builder against kustomize's semantics, for the features it implements.

Each case is what `kubectl kustomize` prints for the same input, as kustomize's
documentation and its own tests state it (the strategic-merge rules of the
Kubernetes API for built-in kinds, JSON merge for custom resources, the
builtin transformers' order and errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kustomize_build import UnsupportedKustomization, build


def write(directory: Path, files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document))
    return directory


def deployment(name: str = "app", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "team/app:1.0",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        },
                        {"name": "sidecar", "image": "other/proxy:2"},
                    ]
                }
            },
            **spec,
        },
    }


def overlay(
    tmp_path: Path, base: dict[str, Any], kustomization: dict[str, Any], **files: Any
) -> Path:
    names = [f"{index}.yaml" for index in range(len(base))]
    write(
        tmp_path / "base",
        {
            "kustomization.yaml": {"resources": names},
            **dict(zip(names, base.values(), strict=True)),
        },
    )
    return write(
        tmp_path / "overlay",
        {"kustomization.yaml": {"resources": ["../base"], **kustomization}, **files},
    )


def built(
    tmp_path: Path, base: dict[str, Any], kustomization: dict[str, Any], **files: Any
) -> dict[str, Any]:
    resources = build(overlay(tmp_path, base, kustomization, **files))
    return {f"{r['kind']}/{r['metadata']['name']}": r for r in resources}


def test_a_container_patch_merges_into_the_container_of_that_name(tmp_path: Path) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "env": [{"name": "B", "value": "changed"}, {"name": "C", "value": "3"}],
                            "resources": {"limits": {"cpu": "1"}},
                        },
                        {"name": "added", "image": "team/extra:1"},
                    ]
                }
            }
        },
    }
    result = built(
        tmp_path,
        {"app": deployment()},
        {"patches": [{"path": "patch.yaml"}]},
        **{"patch.yaml": patch},
    )
    containers = result["Deployment/app"]["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["api", "sidecar", "added"]
    api = containers[0]
    assert api["image"] == "team/app:1.0", "a field the patch does not name is kept"
    assert api["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "changed"},
        {"name": "C", "value": "3"},
    ]
    assert api["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1"},
    }


def test_null_deletes_a_field(tmp_path: Path) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {"replicas": None},
    }
    result = built(
        tmp_path, {"app": deployment()}, {"patches": [{"path": "p.yaml"}]}, **{"p.yaml": patch}
    )
    assert "replicas" not in result["Deployment/app"]["spec"]


def test_a_list_without_a_merge_key_is_replaced(tmp_path: Path) -> None:
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "app"},
        "spec": {
            "podSelector": {},
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"a": "1"}}}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"b": "2"}}}]},
            ],
        },
    }
    rule = {"from": [{"namespaceSelector": {"matchLabels": {"c": "3"}}}]}
    patch = {**policy, "spec": {"ingress": [rule]}}
    result = built(
        tmp_path, {"policy": policy}, {"patches": [{"path": "p.yaml"}]}, **{"p.yaml": patch}
    )
    assert result["NetworkPolicy/app"]["spec"] == {"podSelector": {}, "ingress": [rule]}


def test_a_custom_resource_list_is_replaced_even_under_a_keyed_name(tmp_path: Path) -> None:
    # kustomize has no schema for a custom resource: JSON merge patch, lists replaced.
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "app"},
        "spec": {"minReplicaCount": 1, "containers": [{"name": "a", "x": 1}, {"name": "b"}]},
    }
    patch = {**scaled, "spec": {"minReplicaCount": 0, "containers": [{"name": "a", "y": 2}]}}
    result = built(tmp_path, {"so": scaled}, {"patches": [{"path": "p.yaml"}]}, **{"p.yaml": patch})
    assert result["ScaledObject/app"]["spec"] == {
        "minReplicaCount": 0,
        "containers": [{"name": "a", "y": 2}],
    }


def test_a_patch_must_match_one_resource(tmp_path: Path) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "missing"},
        "spec": {},
    }
    with pytest.raises(UnsupportedKustomization):
        built(
            tmp_path, {"app": deployment()}, {"patches": [{"path": "p.yaml"}]}, **{"p.yaml": patch}
        )


def test_images_set_name_and_tag_of_matching_containers_only(tmp_path: Path) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "i", "image": "team/app"}],
                    "containers": [{"name": "m", "image": "team/application:1.0"}],
                }
            }
        },
    }
    images = [
        {"name": "team/app", "newName": "registry.example.com:5000/team/app", "newTag": "2.0"}
    ]
    result = built(tmp_path, {"app": deployment(), "job": job}, {"images": images})
    containers = result["Deployment/app"]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "registry.example.com:5000/team/app:2.0"
    assert containers[1]["image"] == "other/proxy:2"
    job_spec = result["Job/migrate"]["spec"]["template"]["spec"]
    assert job_spec["initContainers"][0]["image"] == "registry.example.com:5000/team/app:2.0"
    assert job_spec["containers"][0]["image"] == "team/application:1.0", (
        "a longer name is another image"
    )


def test_an_image_with_a_registry_port_keeps_its_name(tmp_path: Path) -> None:
    base = deployment()
    base["spec"]["template"]["spec"]["containers"][0]["image"] = "localhost:5000/team/app:1.0"
    result = built(
        tmp_path, {"app": base}, {"images": [{"name": "localhost:5000/team/app", "newTag": "1.1"}]}
    )
    image = result["Deployment/app"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "localhost:5000/team/app:1.1"


def test_replicas_set_the_workload_of_that_name_not_its_autoscaler(tmp_path: Path) -> None:
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "app"},
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 4,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        },
    }
    result = built(
        tmp_path,
        {"app": deployment(), "hpa": autoscaler},
        {"replicas": [{"name": "app", "count": 5}]},
    )
    assert result["Deployment/app"]["spec"]["replicas"] == 5
    assert result["HorizontalPodAutoscaler/app"]["spec"] == autoscaler["spec"]


def test_replicas_naming_no_workload_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no workload is named other"):
        built(tmp_path, {"app": deployment()}, {"replicas": [{"name": "other", "count": 3}]})


def test_replicas_and_images_apply_after_the_patches(tmp_path: Path) -> None:
    patch = deployment()
    patch["spec"] = {
        "replicas": 9,
        "template": {"spec": {"containers": [{"name": "api", "image": "team/app:9"}]}},
    }
    result = built(
        tmp_path,
        {"app": deployment()},
        {
            "patches": [{"path": "p.yaml"}],
            "replicas": [{"name": "app", "count": 3}],
            "images": [{"name": "team/app", "newTag": "3.0"}],
        },
        **{"p.yaml": patch},
    )
    spec = result["Deployment/app"]["spec"]
    assert spec["replicas"] == 3
    assert spec["template"]["spec"]["containers"][0]["image"] == "team/app:3.0"


def test_namespace_is_set_on_every_resource(tmp_path: Path) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "app", "namespace": "old"},
        "spec": {},
    }
    result = built(tmp_path, {"app": deployment(), "svc": service}, {"namespace": "team-prod"})
    assert {r["metadata"]["namespace"] for r in result.values()} == {"team-prod"}


@pytest.mark.parametrize(
    "field",
    [
        {"commonLabels": {"a": "b"}},
        {"namePrefix": "x-"},
        {"patches": [{"path": "p.yaml", "target": {"kind": "Deployment"}}]},
    ],
)
def test_what_it_does_not_implement_is_refused(tmp_path: Path, field: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedKustomization):
        built(tmp_path, {"app": deployment()}, field, **{"p.yaml": deployment()})
