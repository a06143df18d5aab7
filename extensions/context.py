"""Names derived from the answers, added to the render context."""

from __future__ import annotations

from typing import Any

from copier_template_extensions import ContextHook


class ServiceContext(ContextHook):
    def hook(self, context: dict[str, Any]) -> None:
        # The hook runs in every Copier phase; derived names exist only once
        # the answers do, which is the render phase.
        if context.get("_copier_phase") != "render":
            return
        name = context["service_name"]
        context["service_title"] = name.replace("-", " ").title()
        context["image_name"] = f"{context['team']}/{name}"
        context["has_database"] = context["database"] != "none"
        context["has_broker"] = context["broker"] != "none"
        context["has_auth"] = context["auth"] != "none"
