"""Prometheus gauges of the fleet, computed from the view when `/metrics` is scraped.

Every service instance knows the whole fleet, so each exports the same figures: aggregate
them across instances with `max`, not `sum`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from configsvc.fleet.view import FleetView

NO_APP = ""


class FleetGauges(Collector):
    """SDK instances by app, by document version applied, and rejections by version."""

    def __init__(self, view: FleetView) -> None:
        self._view = view

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        instances, applied, rejected = self._families()
        by_app: Counter[str] = Counter()
        on_version: Counter[tuple[str, str, str]] = Counter()
        refusing: Counter[tuple[str, str, str]] = Counter()
        for member in self._view.all():
            content = member.record.content
            by_app[content.get("app") or NO_APP] += 1
            for key, entry in content["documents"].items():
                namespace, _, name = key.partition("/")
                on_version[namespace, name, str(entry["version"])] += 1
            for key, entry in content["rejected"].items():
                namespace, _, name = key.partition("/")
                refusing[namespace, name, str(entry["version"])] += 1
        for app, count in sorted(by_app.items()):
            instances.add_metric([app], count)
        for labels, count in sorted(on_version.items()):
            applied.add_metric(list(labels), count)
        for labels, count in sorted(refusing.items()):
            rejected.add_metric(list(labels), count)
        yield from (instances, applied, rejected)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "configsvc_fleet_instances",
                "SDK instances reporting (the whole fleet, as every instance knows it), by app",
                labels=["app"],
            ),
            GaugeMetricFamily(
                "configsvc_fleet_document_instances",
                "SDK instances that applied a version of a document",
                labels=["namespace", "name", "version"],
            ),
            GaugeMetricFamily(
                "configsvc_fleet_rejections",
                "SDK instances whose local model rejected a version of a document",
                labels=["namespace", "name", "version"],
            ),
        )
