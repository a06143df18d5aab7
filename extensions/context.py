"""Names derived from the answers, added to the render context."""

from __future__ import annotations

import hashlib
from typing import Any

from copier_template_extensions import ContextHook

# The topics the example feature's worker consumes (features/jobs/events.py);
# without it, the team's events.py names them and the autoscaler is theirs to point.
EXAMPLE_CONSUMED_TOPICS = ("job.created", "job.due")


def jetstream_consumer_name(group: str, topic: str) -> str:
    """The durable consumer a group reads a topic through: consumer_name in platform/broker.py."""
    readable = f"{group}-{topic.replace('.', '_')}"[:100]
    digest = hashlib.sha256(f"{group}\n{topic}".encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


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
        context["consumed_topics"] = (
            list(EXAMPLE_CONSUMED_TOPICS) if context.get("example_feature") else []
        )
        context["jetstream_consumer_name"] = jetstream_consumer_name
