"""Reading /metrics the way Prometheus does, for tests."""

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """Every sample of /metrics by its series, e.g. `jobs_created_total{kind="echo"}`."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return parse_exposition(response.text)


def parse_exposition(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{name}="{value}"' for name, value in sorted(sample.labels.items()))
            samples[sample.name + "{" + labels + "}" if labels else sample.name] = sample.value
    return samples
