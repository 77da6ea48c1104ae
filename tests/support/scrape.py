"""Reading Prometheus text: every sample of a scrape as ``{(name, labels): value}``."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Each sample of ``text`` (Prometheus's text format), keyed by its name and labels."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def series(found: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples named ``name``, keyed by their labels."""
    return {labels: value for (sample, labels), value in found.items() if sample == name}


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    """A sample's labels, as `samples` keys them."""
    return frozenset(pairs.items())


async def fetch(url: str) -> tuple[int, str]:
    """The HTTP status and body of GET ``url`` (an error status is returned, not raised)."""
    try:
        response = await AsyncHTTPClient().fetch(url)
    except HTTPClientError as refused:
        assert refused.response is not None
        return refused.code, refused.response.body.decode()
    return response.code, response.body.decode()


async def scrape(base: str) -> Samples:
    """The samples ``base`` + ``/metrics`` serves."""
    status, body = await fetch(base + "/metrics")
    assert status == 200, body
    return samples(body)
