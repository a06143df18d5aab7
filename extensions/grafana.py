"""A Grafana dashboard built from a short description of its panels.

`ops/grafana/dashboard.json.jinja` lists the rows and panels a service has
(a title, a unit and PromQL queries each); `grafana_dashboard()` lays them
out and writes the JSON Grafana imports, so the template holds what is
shown and this module how Grafana wants it spelt:

    {{ grafana_dashboard(uid="orders-api", title="Orders Api",
                         service="orders-api", rows=[{"title": "HTTP", "panels": [...]}]) }}

A panel is `{"title", "unit", "queries": [(expr, legend), ...]}`, with an
optional `"description"` and `"width"` (of 24 columns; 12 by default).
Every query runs on the `datasource` variable's Prometheus and may use the
`$job` and `$instance` variables, which list the targets that carry
`service="<service>"`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

SCHEMA_VERSION = 39
PANEL_HEIGHT = 8
GRID_WIDTH = 24
DEFAULT_PANEL_WIDTH = 12
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana refuses a uid longer than this.
MAX_UID_LENGTH = 40


def _target_variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": query,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "type": "query",
    }


def _variables(service: str) -> list[dict[str, Any]]:
    targets = f'up{{service="{service}"}}'
    return [
        {
            "current": {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "type": "datasource",
        },
        _target_variable("job", "Job", f"label_values({targets}, job)"),
        _target_variable(
            "instance",
            "Instance",
            f'label_values(up{{service="{service}",job=~"$job"}}, instance)',
        ),
    ]


def _panel(panel: Mapping[str, Any], panel_id: int, x: int, y: int) -> dict[str, Any]:
    queries: Sequence[tuple[str, str]] = panel["queries"]
    return {
        "datasource": DATASOURCE,
        "description": panel.get("description", ""),
        "fieldConfig": {
            "defaults": {
                "custom": {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never"},
                "min": 0,
                "unit": panel["unit"],
            },
            "overrides": [],
        },
        "gridPos": {
            "h": PANEL_HEIGHT,
            "w": panel.get("width", DEFAULT_PANEL_WIDTH),
            "x": x,
            "y": y,
        },
        "id": panel_id,
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
                "refId": chr(ord("A") + index),
            }
            for index, (expr, legend) in enumerate(queries)
        ],
        "title": panel["title"],
        "type": "timeseries",
    }


def _panels(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each row's header, then its panels left to right, wrapping at the grid's width."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        panels.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "id": len(panels) + 1,
                "panels": [],
                "title": row["title"],
                "type": "row",
            }
        )
        y += 1
        x = 0
        for panel in row["panels"]:
            width = panel.get("width", DEFAULT_PANEL_WIDTH)
            if x + width > GRID_WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += width
        y += PANEL_HEIGHT
    return panels


def grafana_dashboard(
    *,
    uid: str,
    title: str,
    service: str,
    rows: Sequence[Mapping[str, Any]],
    description: str = "",
    tags: Sequence[str] = (),
) -> str:
    """The dashboard as Grafana's JSON model, indented by two spaces."""
    if len(uid) > MAX_UID_LENGTH:
        raise ValueError(f"a Grafana uid has at most {MAX_UID_LENGTH} characters: {uid}")
    dashboard = {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": _panels(rows),
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(tags),
        "templating": {"list": _variables(service)},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }
    return json.dumps(dashboard, indent=2, ensure_ascii=False)


class GrafanaDashboards(Extension):
    """Adds grafana_dashboard() to the template globals."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals.update(grafana_dashboard=grafana_dashboard)
