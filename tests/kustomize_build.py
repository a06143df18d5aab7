"""`kubectl kustomize`, for exactly the features the rendered overlays use.

No kustomize binary installs offline here (none is published on PyPI by the
kustomize project; the wheels that bundle one are third-party builds or fetch
the binary from GitHub at run time), so the tests build the overlays with this,
and fail loudly on any kustomization field it does not implement. What it does,
in kustomize's own order (api/internal/target/kusttarget.go,
configureBuiltinTransformers: patches, namespace, replicas, images):

- `resources`: files of one document each, and directories, built in turn.
- `patches` with a `path` and no `target`: a strategic-merge patch of the one
  resource of the patch's kind and name. Maps merge key by key and `null`
  deletes one; a list of a built-in workload's pod template whose items
  Kubernetes merges by a key (containers and initContainers by `name`, env
  and volumes by `name`, volumeMounts by `mountPath`) merges item by item,
  an item that matches none being appended; every other list is replaced,
  as kustomize does for lists without a merge key and for custom resources.
- `namespace`: set on every resource (all of them are namespaced).
- `replicas`: `spec.replicas` of the Deployment, StatefulSet, ReplicaSet or
  ReplicationController of that name; an entry that matches none is an error.
- `images`: every container's and init container's image whose name matches
  gets `newName` and `newTag`.

tests/test_kustomize_build.py holds the cases that pin these semantics.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
REPLICA_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}


class UnsupportedKustomization(Exception):
    """The kustomization uses something this builder does not implement."""


def build(directory: Path) -> list[Resource]:
    """The resources `kubectl kustomize directory` prints, in the order they were listed."""
    kustomization: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedKustomization(f"{directory}: {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.append(yaml.safe_load(path.read_text()))
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise UnsupportedKustomization(f"patch {patch}: only `path` is implemented")
        apply_patch(resources, yaml.safe_load((directory / patch["path"]).read_text()))
    if "namespace" in kustomization:
        set_namespace(resources, kustomization["namespace"])
    for replica in kustomization.get("replicas", []):
        set_replicas(resources, replica["name"], replica["count"])
    for image in kustomization.get("images", []):
        set_image(resources, image)
    return resources


def apply_patch(resources: list[Resource], patch: Resource) -> None:
    name = patch["metadata"]["name"]
    matches = [
        index
        for index, resource in enumerate(resources)
        if resource["kind"] == patch["kind"] and resource["metadata"]["name"] == name
    ]
    if len(matches) != 1:
        raise UnsupportedKustomization(f"the patch of {patch['kind']} {name} matches {matches}")
    (index,) = matches
    keyed = resources[index]["kind"] in POD_TEMPLATE_KINDS
    resources[index] = merge(resources[index], patch, keyed=keyed)


def merge(target: Any, patch: Any, *, keyed: bool, field: str = "") -> Any:
    """A strategic merge of `patch` into `target` (see the module's docstring)."""
    if isinstance(patch, dict) and isinstance(target, dict):
        if any(key.startswith("$") for key in patch):
            raise UnsupportedKustomization(f"patch directives: {sorted(patch)}")
        merged = copy.deepcopy(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value, keyed=keyed, field=key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(patch, list) and isinstance(target, list) and keyed and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        items = copy.deepcopy(target)
        for item in patch:
            positions = [i for i, existing in enumerate(items) if existing[key] == item[key]]
            if positions:
                items[positions[0]] = merge(items[positions[0]], item, keyed=keyed)
            else:
                items.append(copy.deepcopy(item))
        return items
    return copy.deepcopy(patch)


def set_namespace(resources: list[Resource], namespace: str) -> None:
    for resource in resources:
        if resource["kind"] in CLUSTER_SCOPED_KINDS:
            raise UnsupportedKustomization(f"a cluster-scoped {resource['kind']}")
        resource["metadata"]["namespace"] = namespace


def set_replicas(resources: list[Resource], name: str, count: int) -> None:
    matches = [
        resource
        for resource in resources
        if resource["kind"] in REPLICA_KINDS and resource["metadata"]["name"] == name
    ]
    if not matches:
        # kustomize: "resource with name ... does not match a config with the following GVK"
        raise ValueError(f"replicas: no workload is named {name}")
    for resource in matches:
        resource["spec"]["replicas"] = count


def image_name(image: str) -> str:
    """The image without its tag or digest (a registry's port is part of the name)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def set_image(resources: list[Resource], image: dict[str, str]) -> None:
    unsupported = set(image) - {"name", "newName", "newTag"}
    if unsupported:
        raise UnsupportedKustomization(f"images: {sorted(unsupported)}")
    for container in containers_in(resources):
        current = container["image"]
        name = image_name(current)
        if name != image["name"]:
            continue
        tag = current[len(name) + 1 :] if current[len(name) :].startswith(":") else ""
        new_tag = image.get("newTag", tag)
        container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")


def containers_in(node: Any) -> list[dict[str, Any]]:
    """Every container and init container, wherever a resource holds them."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(item for item in value if isinstance(item, dict) and "image" in item)
            else:
                found.extend(containers_in(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(containers_in(item))
    return found
