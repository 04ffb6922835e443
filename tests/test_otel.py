"""`paymux.contrib.otel`: spans and metrics of real flows on the sandbox, and no personal datum.

Each test registers an `OpenTelemetryObserver` on a fresh `paymux.Registry`, wired to the SDK's
in-memory span exporter and metric reader, connects through that registry, and reads back what
was exported. The privacy test serializes everything exported and searches it for every
personal datum and secret the run handled.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import paymux
from paymux.contrib.otel import DURATION_BUCKETS, OpenTelemetryObserver, instrument
from paymux.providers.alikassa.keys import read_password
from paymux.providers.alikassa.sandbox import Fault, Merchant, NotificationReceiver, Sandbox
from support import payment_request

LATER = 10**10
"""A sweep's `now` far in the future: every entry is due."""

EMAIL = "ivan.petrov@example.com"
CUSTOMER_IP = "18.191.80.10"
AMOUNT = Decimal("731.37")


@dataclass
class Telemetry:
    """An observer on its own registry, and what it exported."""

    registry: paymux.Registry
    observer: OpenTelemetryObserver
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def connect(self, settings: dict[str, Any], **overrides: Any) -> paymux.Provider:
        instance = paymux.InstanceConfig.from_mapping("shop", {**settings, **overrides})
        return self.registry.connect(instance)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Each metric's points as (attributes, value): a number, or (count, sum) of a histogram."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        if isinstance(point, HistogramDataPoint):
                            points.append((attributes, (point.count, point.sum)))
                        elif isinstance(point, NumberDataPoint):
                            points.append((attributes, point.value))
        return found

    def value(self, name: str, **attributes: Any) -> Any:
        """The one point of `name` whose attributes include `attributes` (`paymux.` prefixed)."""
        wanted = {f"paymux.{key}": value for key, value in attributes.items()}
        matches = [
            value
            for found, value in self.metrics().get(name, [])
            if wanted.items() <= found.items()
        ]
        assert len(matches) == 1, (name, attributes, self.metrics().get(name))
        return matches[0]

    def exported(self) -> str:
        """Everything exported, serialized: every span and every metric point."""
        data = self.reader.get_metrics_data()
        return "\n".join(
            [span.to_json() for span in self.finished()] + ([data.to_json()] if data else [])
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    registry = paymux.Registry()
    observer = instrument(registry, tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Telemetry(registry, observer, spans, reader)
    registry.unregister(observer)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- one checkout: create, status, notification -------------------------------------------------


@dataclass
class Checkout:
    order_id: str
    payment_id: str
    verdicts: list[paymux.Verdict]


def checkout(telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox) -> Checkout:
    """Create a payment, let the payer pay, ask its status, and take its notification through a
    guard twice (the gateway's repeat)."""
    with NotificationReceiver() as endpoint, telemetry.connect(merchant.settings) as provider:
        request = payment_request(
            amount=AMOUNT,
            customer=paymux.Customer(ip=CUSTOMER_IP, user_agent="Mozilla/5.0", email=EMAIL),
            notification_url=endpoint.url,
        )
        created = provider.create(request)
        delivery = sandbox.settle(created.id, "paid")
        assert delivery is not None
        assert delivery.http_status == 200, delivery.error
        assert provider.status(payment_id=created.id).status is paymux.PaymentStatus.PAID
        notification = provider.parse_notification(endpoint.received[-1])
    guard = paymux.NotificationGuard(paymux.MemoryStore(), observers=telemetry.registry)
    verdicts = []
    for _ in range(2):
        with guard.admitted(notification) as verdict:
            verdicts.append(verdict)
    return Checkout(request.order_id, created.id, verdicts)


def test_a_checkout_gives_a_client_span_per_exchange(
    telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox
) -> None:
    checkout(telemetry, merchant, sandbox)

    create, status = telemetry.finished()
    assert (create.name, status.name) == ("paymux create", "paymux status")
    for span, operation in ((create, "create"), (status, "status")):
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert span.start_time is not None
        assert span.end_time is not None
        assert 0 < span.end_time - span.start_time < 10**10
        attributes = attributes_of(span)
        assert uuid.UUID(attributes.pop("paymux.request_id")).version == 4
        assert attributes == {
            "paymux.provider": "alikassa",
            "paymux.instance": "shop",
            "paymux.operation": operation,
            "paymux.outcome": "answered",
            "paymux.attempt": 1,
            "http.request.method": "POST",
            "http.response.status_code": 200,
            "server.address": "127.0.0.1",
            "server.port": urlsplit(merchant.settings["base_url"]).port,
        }
    assert create.end_time is not None
    assert status.start_time is not None
    assert create.end_time <= status.start_time


def test_a_checkout_is_counted_by_operation_update_and_verdict(
    telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox
) -> None:
    done = checkout(telemetry, merchant, sandbox)

    assert done.verdicts == [paymux.Verdict.NEW, paymux.Verdict.DUPLICATE]
    shop = {"provider": "alikassa", "instance": "shop"}
    for operation in ("create", "status"):
        assert telemetry.value("paymux.calls", operation=operation, outcome="answered") == 1
        count, seconds = telemetry.value("paymux.call.duration", operation=operation)
        assert count == 1
        assert 0 < seconds < 10
    assert {name for name in telemetry.metrics()} >= {"paymux.calls", "paymux.call.duration"}
    assert "paymux.outcomes.unknown" not in telemetry.metrics()
    assert "paymux.repeats" not in telemetry.metrics()
    for source, status in (("create", "pending"), ("status", "paid"), ("notification", "paid")):
        found = telemetry.value("paymux.updates", kind="payment", source=source, **shop)
        assert found == 1
        assert telemetry.value("paymux.updates", source=source, status=status) == 1
    for verdict in ("new", "duplicate"):
        assert telemetry.value("paymux.notifications", verdict=verdict, kind="payment", **shop) == 1


def test_nothing_exported_carries_a_personal_datum_or_a_secret(
    telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox
) -> None:
    done = checkout(telemetry, merchant, sandbox)

    exported = telemetry.exported()
    certificate = merchant.payment_certificate
    key_lines = [
        line
        for line in certificate.private_key.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    personal = {
        "order id": done.order_id,
        "payment id": done.payment_id,
        "email": EMAIL,
        "customer's address": CUSTOMER_IP,
        "amount": str(AMOUNT),
        "amount as sent": f"{AMOUNT:.9f}",
        "merchant account": merchant.account,
        "key password": read_password(certificate.password_file).reveal().decode(),
    }
    assert len(exported) > 1000, "the spans and metrics were exported"
    for what, value in personal.items():
        assert value not in exported, f"the {what} {value!r} was exported"
    assert len(key_lines) > 10
    for line in key_lines:
        assert line not in exported, "the merchant's private key was exported"
    # the metrics carry only low-cardinality attributes, none of them an id
    keys = {key for points in telemetry.metrics().values() for found, _ in points for key in found}
    assert keys == {
        "paymux.provider",
        "paymux.instance",
        "paymux.operation",
        "paymux.outcome",
        "paymux.kind",
        "paymux.source",
        "paymux.status",
        "paymux.verdict",
    }


# -- failures -----------------------------------------------------------------------------------


def test_a_server_error_is_an_error_span_and_counted(
    telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox
) -> None:
    with telemetry.connect(merchant.settings, max_attempts=1) as provider:
        created = provider.create(payment_request())
        sandbox.inject(Fault.INTERNAL_ERROR, on="status")
        with pytest.raises(paymux.ProviderServerError):
            provider.status(payment_id=created.id)

    failed = telemetry.finished()[-1]
    assert failed.name == "paymux status"
    assert failed.status.status_code is StatusCode.ERROR
    assert attributes_of(failed)["http.response.status_code"] == 500
    assert attributes_of(failed)["error.type"] == "500"
    assert telemetry.value("paymux.calls", operation="status", outcome="answered") == 1


def test_a_dropped_create_is_an_unknown_outcome_then_settled_by_a_lookup(
    telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault.DROP_CONNECTION, on="create")
    with telemetry.connect(merchant.settings) as provider:
        created = provider.create(payment_request())

    assert created.status is paymux.PaymentStatus.PENDING
    dropped, lookup = telemetry.finished()
    assert dropped.name == "paymux create"
    assert dropped.status.status_code is StatusCode.ERROR
    assert attributes_of(dropped)["paymux.outcome"] == "interrupted"
    assert "http.response.status_code" not in attributes_of(dropped)
    assert lookup.name == "paymux status"
    assert lookup.status.status_code is StatusCode.UNSET
    assert telemetry.value("paymux.outcomes.unknown", operation="create") == 1
    assert telemetry.value("paymux.calls", operation="create", outcome="interrupted") == 1


def test_an_unreachable_gateway_is_error_spans_and_repeats(
    telemetry: Telemetry, merchant: Merchant
) -> None:
    port = closed_port()
    settings = {**merchant.settings, "base_url": f"http://127.0.0.1:{port}/api"}
    with (
        telemetry.connect(settings, max_attempts=2, backoff=0.01) as provider,
        pytest.raises(paymux.TransportError),
    ):
        provider.create(payment_request())

    spans = telemetry.finished()
    assert [attributes_of(span)["paymux.attempt"] for span in spans] == [1, 2]
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert attributes_of(span)["error.type"] == "not_sent"
        assert attributes_of(span)["server.address"] == "127.0.0.1"
        assert attributes_of(span)["server.port"] == port
    assert telemetry.value("paymux.calls", operation="create", outcome="not_sent") == 2
    assert telemetry.value("paymux.repeats", operation="create", outcome="not_sent") == 1
    assert "paymux.outcomes.unknown" not in telemetry.metrics()


# -- the sweeper ------------------------------------------------------------------------------


def test_sweeps_set_the_backlog_and_count_what_they_settle(
    telemetry: Telemetry, merchant: Merchant, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A create whose answer was lost with reconciling off: the first sweep reconciles it into
    a pending payment, the second finds it paid, the third finds nothing due."""
    sandbox.inject(Fault.INTERNAL_ERROR, on="create")
    ledger = str(tmp_path / "ledger.sqlite3")
    with telemetry.connect(merchant.settings, ledger=ledger, reconcile=False) as provider:
        request = payment_request()
        with pytest.raises(paymux.OutcomeUnknown):
            provider.create(request)

        first = paymux.sweep(provider, now=LATER)
        assert (first.due, first.states) == (1, {"pending": 1})
        assert telemetry.value("paymux.sweep.backlog", instance="shop") == 1
        assert telemetry.value("paymux.reconciles", kind="payment", status="pending") == 1
        assert "paymux.sweep.settled" not in telemetry.metrics()

        sandbox.settle(sandbox.payment(request.order_id).id, "paid", notify=False)
        second = paymux.sweep(provider, now=LATER * 2)
        assert (second.due, second.states) == (1, {"settled": 1})
        assert telemetry.value("paymux.sweep.settled", state="settled", instance="shop") == 1

        third = paymux.sweep(provider, now=LATER * 3)
        assert third.due == 0
        assert telemetry.value("paymux.sweep.backlog", provider="alikassa", instance="shop") == 0

    failed = telemetry.finished()[0]
    assert (failed.name, failed.status.status_code) == ("paymux create", StatusCode.ERROR)
    assert "paymux.sweep.operator" not in telemetry.metrics()


def test_the_backlog_is_kept_per_instance(telemetry: Telemetry) -> None:
    telemetry.observer.paymux_sweep("alikassa", "eu", paymux.SweepReport(due=7))
    telemetry.observer.paymux_sweep("alikassa", "us", paymux.SweepReport(due=2))
    telemetry.observer.paymux_sweep("alikassa", "eu", paymux.SweepReport(due=3))
    points = telemetry.metrics()["paymux.sweep.backlog"]
    assert sorted((found["paymux.instance"], due) for found, due in points) == [
        ("eu", 3),
        ("us", 2),
    ]


def test_an_unregistered_observer_hears_nothing(telemetry: Telemetry, merchant: Merchant) -> None:
    telemetry.registry.unregister(telemetry.observer)
    with telemetry.connect(merchant.settings) as provider:
        provider.create(payment_request())

    assert telemetry.finished() == []
    assert "paymux.calls" not in telemetry.metrics()


def test_instrument_registers_with_the_default_registry_by_default() -> None:
    observer = instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
    try:
        assert paymux.default_registry().plugin_manager.is_registered(observer)
    finally:
        paymux.unregister_plugin(observer)
    assert not paymux.default_registry().plugin_manager.is_registered(observer)


def test_durations_are_bucketed_in_seconds(telemetry: Telemetry, merchant: Merchant) -> None:
    with telemetry.connect(merchant.settings) as provider:
        provider.create(payment_request())

    data = telemetry.reader.get_metrics_data()
    assert data is not None
    [duration] = [
        metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "paymux.call.duration"
    ]
    [point] = duration.data.data_points
    assert isinstance(point, HistogramDataPoint)
    assert duration.unit == "s"
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
