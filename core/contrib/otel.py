"""OpenTelemetry traces and metrics of what paymux does, from its observer hooks (`paymux[otel]`).

An observer sees every exchange, status update, guard verdict and sweep without touching a
call's path, so instrumenting costs one `instrument()`. It records only what cannot identify a
person or an order: provider, instance, operation, outcome, status, the gateway's host name —
never a payment or order id, an amount, an address's path or query, or a key.

    from paymux.contrib.otel import instrument

    instrument()  # the global tracer and meter providers, the default registry
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

import paymux
from paymux._transport import Exchange
from paymux.guards import Verdict
from paymux.hookspecs import hookimpl
from paymux.ledger import EntryState
from paymux.models import Notification, Payment, Payout, Refund
from paymux.registry import Registry, default_registry
from paymux.sweeper import SweepReport

__all__ = ["DURATION_BUCKETS", "MONEY_MOVING", "OpenTelemetryObserver", "instrument"]

SCOPE = "paymux"
MONEY_MOVING = frozenset({"create", "refund", "capture", "cancel", "payout"})
"""The operations that move money, as providers name their requests."""
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
    30,
    60,
)
"""Seconds: OpenTelemetry's HTTP buckets, up to a gateway's 30 s read timeout and beyond."""
_CLOSED = (EntryState.SETTLED, EntryState.REFUSED)

Attributes = dict[str, AttributeValue]


class OpenTelemetryObserver:
    """Spans and metrics of paymux's hooks; register it with `instrument()` or
    `Registry.register`.

    One CLIENT span per HTTP exchange, timed by the exchange itself, and these metrics (all
    attributes low-cardinality):

    - `paymux.calls` (counter) and `paymux.call.duration` (histogram, s) per exchange, by
      provider, instance, operation and outcome;
    - `paymux.outcomes.unknown`: exchanges with outcome "interrupted" (sent, no answer: the
      gateway may have acted);
    - `paymux.repeats`: money-moving exchanges (create, refund, capture, cancel, payout) that
      repeat a call (`attempt` 2 or more), each a step of sending it exactly once: after an
      unknown outcome, a "still processing", or a send the gateway certainly did not act on;
    - `paymux.reconciles`: unknown outcomes settled (updates with source "reconcile", by
      provider, instance, kind and the status they turned out to have), the host's and the
      sweeper's;
    - `paymux.updates`: payment, refund and payout updates by kind, source and status;
    - `paymux.notifications`: a `NotificationGuard`'s verdicts, by provider, instance, kind and
      verdict;
    - `paymux.sweep.backlog` (gauge): `report.due` of each instance's last sweep;
    - `paymux.sweep.settled`: ledger entries sweeps closed, by end state (settled, refused);
      `paymux.sweep.operator`: entries they sent to the operator queue.

    Metrics are created once per observer: build one observer per meter provider.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE, paymux.__version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, paymux.__version__, meter_provider)
        self.calls = meter.create_counter(
            "paymux.calls", unit="{call}", description="HTTP exchanges with payment gateways"
        )
        self.duration = _histogram(
            meter, "paymux.call.duration", unit="s", description="Duration of each HTTP exchange"
        )
        self.unknown = meter.create_counter(
            "paymux.outcomes.unknown",
            unit="{call}",
            description="Exchanges sent with no answer: the gateway may have acted",
        )
        self.repeats = meter.create_counter(
            "paymux.repeats",
            unit="{call}",
            description="Money-moving calls sent again, to make them happen exactly once",
        )
        self.reconciles = meter.create_counter(
            "paymux.reconciles",
            unit="{call}",
            description="Calls whose unknown outcome was settled by reconciling",
        )
        self.updates = meter.create_counter(
            "paymux.updates",
            unit="{update}",
            description="Payment, refund and payout snapshots the gateways reported",
        )
        self.notifications = meter.create_counter(
            "paymux.notifications",
            unit="{notification}",
            description="Verified notifications by the guard's verdict",
        )
        self.settled = meter.create_counter(
            "paymux.sweep.settled",
            unit="{entry}",
            description="Ledger entries a sweep closed, by the state they ended in",
        )
        self.operator = meter.create_counter(
            "paymux.sweep.operator",
            unit="{entry}",
            description="Ledger entries a sweep sent to the operator queue",
        )
        self._backlog: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            "paymux.sweep.backlog",
            callbacks=[self._observe_backlog],
            unit="{entry}",
            description="Ledger entries due when each instance's last sweep began",
        )

    @hookimpl
    def paymux_exchange(self, exchange: Exchange) -> None:
        common: Attributes = {
            "paymux.provider": exchange.provider,
            "paymux.instance": exchange.instance,
            "paymux.operation": exchange.operation,
            "paymux.outcome": exchange.outcome,
        }
        self._span(exchange, common)
        self.calls.add(1, common)
        self.duration.record(exchange.duration, common)
        if exchange.outcome == "interrupted":
            self.unknown.add(1, common)
        if exchange.attempt > 1 and exchange.operation in MONEY_MOVING:
            self.repeats.add(1, common)

    @hookimpl
    def paymux_payment_update(self, payment: Payment, source: str) -> None:
        self._update("payment", payment, source)

    @hookimpl
    def paymux_refund_update(self, refund: Refund, source: str) -> None:
        self._update("refund", refund, source)

    @hookimpl
    def paymux_payout_update(self, payout: Payout, source: str) -> None:
        self._update("payout", payout, source)

    @hookimpl
    def paymux_notification_verdict(self, notification: Notification, verdict: Verdict) -> None:
        self.notifications.add(
            1,
            {
                "paymux.provider": notification.provider,
                "paymux.instance": notification.instance,
                "paymux.kind": notification.kind.value,
                "paymux.verdict": verdict.value,
            },
        )

    @hookimpl
    def paymux_sweep(self, provider: str, instance: str, report: SweepReport) -> None:
        where: Attributes = {"paymux.provider": provider, "paymux.instance": instance}
        with self._lock:
            self._backlog[(provider, instance)] = report.due
        for state in _CLOSED:
            if report.count(state):
                self.settled.add(report.count(state), {**where, "paymux.state": state.value})
        if report.count(EntryState.OPERATOR):
            self.operator.add(report.count(EntryState.OPERATOR), where)

    def _span(self, exchange: Exchange, common: Attributes) -> None:
        end = time.time_ns()
        start = end - max(0, round(exchange.duration * 1e9))
        attributes: Attributes = {
            **common,
            "paymux.attempt": exchange.attempt,
            "paymux.request_id": exchange.request_id,
            "http.request.method": exchange.method,
        }
        attributes.update(_server(exchange.url))
        if exchange.http_status is not None:
            attributes["http.response.status_code"] = exchange.http_status
        error = _error(exchange)
        if error is not None:
            attributes["error.type"] = error
        span = self.tracer.start_span(
            f"paymux {exchange.operation}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, f"{exchange.operation}: {error}"))
        span.end(end_time=end)

    def _update(self, kind: str, subject: Payment | Refund | Payout, source: str) -> None:
        attributes: Attributes = {
            "paymux.provider": subject.provider,
            "paymux.instance": subject.instance or "",
            "paymux.kind": kind,
            "paymux.status": subject.status.value,
        }
        self.updates.add(1, {**attributes, "paymux.source": source})
        if source == "reconcile":
            self.reconciles.add(1, attributes)

    def _observe_backlog(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            backlog = dict(self._backlog)
        return [
            Observation(due, {"paymux.provider": provider, "paymux.instance": instance})
            for (provider, instance), due in sorted(backlog.items())
        ]


def _histogram(meter: Meter, name: str, *, unit: str, description: str) -> Histogram:
    """A histogram with `DURATION_BUCKETS` (as advice, which an API before 1.23 cannot take)."""
    try:
        return meter.create_histogram(
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
    except TypeError:  # pragma: no cover - opentelemetry-api < 1.23
        return meter.create_histogram(name, unit=unit, description=description)


def _server(url: str) -> Attributes:
    """`server.address` (and `server.port`) of a URL: never its path, query or user info."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    found: Attributes = {}
    if host:
        found["server.address"] = host
    if port is not None:
        found["server.port"] = port
    return found


def _error(exchange: Exchange) -> str | None:
    """What went wrong with an exchange, as `error.type`: its outcome when it got no answer,
    its status at 500 and above; None when it was answered below 500."""
    if exchange.outcome != "answered":
        return exchange.outcome
    if exchange.http_status is not None and exchange.http_status >= 500:
        return str(exchange.http_status)
    return None


def instrument(
    registry: Registry | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OpenTelemetryObserver:
    """Register an `OpenTelemetryObserver` with `registry` (by default the process-wide one
    `paymux.connect` uses) and return it; `registry.unregister(observer)` removes it."""
    observer = OpenTelemetryObserver(tracer_provider, meter_provider)
    (registry or default_registry()).register(observer)
    return observer
