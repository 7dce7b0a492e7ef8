"""The server's Prometheus metrics: counters, gauges and histograms kept in each process, whose snapshots (plain data,
sent between replicas) add up into one text exposition for GET /metrics.

The ingress counts requests and their latency; each model replica its batches (tokens, inputs, run time), the time
requests queue before their first batch, and the requests in flight.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
INPUT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass
class Metric:
    name: str
    help: str
    kind: str                                  # "counter", "gauge" or "histogram"
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    # per label values: [value]; for a histogram, the cumulative count of each bucket, then the sum and the count
    values: dict[tuple[str, ...], list[float]] = field(default_factory=dict)

    def inc(self, *label_values: str) -> None:
        self._row(label_values)[0] += 1

    def set(self, value: float, *label_values: str) -> None:
        self._row(label_values)[0] = value

    def observe(self, value: float, *label_values: str) -> None:
        row = self._row(label_values)
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                row[index] += 1
        row[-2] += value
        row[-1] += 1

    def _row(self, label_values: tuple[str, ...]) -> list[float]:
        size = len(self.buckets) + 2 if self.kind == "histogram" else 1
        return self.values.setdefault(label_values, [0.0] * size)


class RequestMetrics:
    """The ingress's: requests by route and status, and their latency."""

    def __init__(self):
        self.requests = Metric("fastbert_requests_total", "HTTP requests answered, by route and status", "counter",
                               ("route", "status"))
        self.latency = Metric("fastbert_request_duration_seconds", "Time from a request's arrival to its answer",
                              "histogram", ("route",), LATENCY_BUCKETS)

    def answered(self, route: str, status: int, seconds: float) -> None:
        self.requests.inc(route, str(status))
        self.latency.observe(seconds, route)

    def snapshot(self) -> list[Metric]:
        return copy.deepcopy([self.requests, self.latency])


class BatchMetrics:
    """A model replica's: its batches and queue (a batcher observer), and the requests in flight when scraped."""

    def __init__(self):
        self.batch_tokens = Metric("fastbert_batch_tokens", "Tokens in each forward pass", "histogram",
                                   buckets=TOKEN_BUCKETS)
        self.batch_inputs = Metric("fastbert_batch_inputs", "Inputs (texts or pairs) in each forward pass",
                                   "histogram", buckets=INPUT_BUCKETS)
        self.batch_time = Metric("fastbert_batch_duration_seconds", "Time each batch ran on the model", "histogram",
                                 buckets=LATENCY_BUCKETS)
        self.queue_time = Metric("fastbert_queue_duration_seconds", "Time a request waited before its first batch",
                                 "histogram", buckets=LATENCY_BUCKETS)
        self.in_flight = Metric("fastbert_requests_in_flight", "Requests queued or running on the model", "gauge")

    def request_queued(self, seconds: float) -> None:
        self.queue_time.observe(seconds)

    def batch_ran(self, tokens: int, inputs: int, seconds: float) -> None:
        self.batch_tokens.observe(tokens)
        self.batch_inputs.observe(inputs)
        self.batch_time.observe(seconds)

    def snapshot(self, in_flight: int) -> list[Metric]:
        self.in_flight.set(in_flight)
        return copy.deepcopy([self.batch_tokens, self.batch_inputs, self.batch_time, self.queue_time, self.in_flight])


def merge(snapshots: list[list[Metric]]) -> list[Metric]:
    """Snapshots of several processes as one: values of the same metric and labels add up."""
    merged: dict[str, Metric] = {}
    for snapshot in snapshots:
        for metric in snapshot:
            total = merged.setdefault(metric.name, Metric(metric.name, metric.help, metric.kind, metric.labels,
                                                          metric.buckets))
            for label_values, row in metric.values.items():
                into = total._row(label_values)
                for index, value in enumerate(row):
                    into[index] += value
    return list(merged.values())


def render(metrics: list[Metric]) -> str:
    """Prometheus' text exposition format, version 0.0.4."""
    lines = []
    for metric in metrics:
        lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}"]
        for label_values, row in sorted(metric.values.items()):
            labels = list(zip(metric.labels, label_values))
            if metric.kind != "histogram":
                lines.append(f"{metric.name}{_labels(labels)} {row[0]}")
                continue
            for bound, count in zip((*metric.buckets, "+Inf"), (*row[:-2], row[-1])):
                lines.append(f"{metric.name}_bucket{_labels(labels + [('le', str(bound))])} {count}")
            lines += [f"{metric.name}_sum{_labels(labels)} {row[-2]}",
                      f"{metric.name}_count{_labels(labels)} {row[-1]}"]
    return "\n".join(lines) + "\n"


def _labels(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, value in pairs)
    return "{" + ",".join(f'{name}="{value}"' for (name, _), value in zip(pairs, escaped)) + "}"
