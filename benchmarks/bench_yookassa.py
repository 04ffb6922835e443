"""YooKassa: create and status over HTTP against its emulator on loopback, and its notifications
without network, each against the least a correct client does.

    python benchmarks/bench_yookassa.py            # full run, about two minutes
    python benchmarks/bench_yookassa.py --quick    # smoke run

HTTP. The emulator (`paymux_yookassa.emulator.Emulator`) runs in a separate process: this
script started as `python benchmarks/bench_yookassa.py serve` adds one shop, prints its connect
settings and its pid as one JSON line, then answers `cpu` (its own CPU seconds so far, all its
threads) and `stop` on stdin, one JSON line each. So `time.process_time()` here is the client's
CPU and nothing of the server's. Every client sends the same request bytes (checked at start):
a redirect payment of 1500.00 RUB with a description and `metadata.order_id`, compact JSON,
HTTP Basic auth with the shop id and secret key, a fresh uuid4 `Idempotence-Key` per create.

* `paymux`   - `paymux.connect(settings)` once, then `provider.create(PaymentRequest(...))` and
               `provider.status(payment_id=...)`: marshmallow checks of the request, the JSON
               body, the exactly-once runner, the pooled `requests` session, the answer read
               field by field into a `Payment`, events and observers.
* `floor`    - the least a correct Python client does on the same HTTP stack: one
               `requests.Session` (`trust_env=False`, an `HTTPAdapter(pool_connections=1,
               pool_maxsize=32)` mounted, like paymux's), the Basic auth header computed once,
               `json.dumps` compact, `session.post` / `session.get`, the status code checked,
               `r.json()`, the id and status read.
* `physical` - the physical floor: one keep-alive `http.client.HTTPConnection`, the same
               headers and body, `request`, `getresponse`, `read`, `json.loads`. The emulator
               speaks HTTP/1.1 keep-alive; should it close the connection the client reconnects
               and the count of reconnects is reported.

Measured: sequential creates and status checks (throughput, median latency, client CPU per
call, the emulator's CPU per call for reference), then status checks from N threads sharing one
client (N = 1, 4, 16; paymux and floor). Every round runs the clients in short blocks whose
order rotates, and adds the blocks up; the numbers are medians over rounds.

The emulator as shipped sweeps every payment it holds for expiry on every API request, under
its store lock: its cost per request grows with the payments created (about 0.2 us each, so
over a millisecond after a few thousand creates), and 16 threads queue behind it. The
benchmark's emulator skips that sweep (`--keep-expiry-sweep` keeps it): within a run nothing can
expire (a pending payment waits an hour), and a payment read is still checked for expiry.

Notifications, no network. YooKassa signs nothing; the provider declares SENDER and REFETCH
authentication, so `provider.parse_notification` re-fetches the payment over the API. Measured
is the part without network, the one the issue names: building the `paymux.Incoming` a view
hands over, core's sender check (`paymux._authentication.check_sender` against
`provider.allowed_senders()`, YooKassa's seven published networks) and the provider's
`read_notification` (the JSON body parsed and the payment object read into a `Payment`). The
baseline is what any correct handler must do: `ipaddress.ip_address(sender)` checked against
the same networks as `ipaddress.ip_network` objects, `json.loads(body)`, and the event, object
id and status read. The body is a `payment.succeeded` notification for a card payment, as the
emulator sends it (about 800 bytes); the sender is in the sixth of the seven networks. Per-call
times are wall-clock (`time.perf_counter`) on one thread, interleaved in every round.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import http.client
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests
from _common import BENCHMARKS, JSON, Target, finish, median, parser, ratio, rounds_for, table
from _measure import Client, Run, next_order_id, rotate, sequential, spread, summarise, threaded
from requests.adapters import HTTPAdapter

import paymux
from paymux import Authentication, NotificationKind, PaymentStatus
from paymux._authentication import check_sender

RETURN_URL = "https://shop.example/orders/back"
AMOUNT = Decimal("1500.00")
DESCRIPTION = "Order for a benchmark"
THREADS = (1, 4, 16)
POOL_SIZE = 32
TIMEOUT = (5.0, 30.0)

# The notification part: a shop, its notification endpoint, a sender inside YooKassa's networks.
NOTIFY_SHOP_ID = "506751"
NOTIFY_SECRET_KEY = f"test_{secrets.token_urlsafe(32)}"
NOTIFY_PATH = "/yookassa/notifications"
SENDER = "77.75.154.200"
YOOKASSA_NETWORKS = (
    "185.71.76.0/27",
    "185.71.77.0/27",
    "77.75.153.0/25",
    "77.75.156.11/32",
    "77.75.156.35/32",
    "77.75.154.128/25",
    "2a02:5180::/32",
)
"""YooKassa's published notification addresses, as a handler written without paymux lists them."""


# -- the emulator in its own process ------------------------------------------------------------


class EmulatorProcess:
    """The YooKassa emulator running in a child process (this script's `serve` sub-command),
    so that the client's CPU time excludes everything the emulator does."""

    def __init__(self, *, keep_expiry_sweep: bool = False) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "serve"]
        if keep_expiry_sweep:
            command.append("--keep-expiry-sweep")
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        ready = self._read()
        self.settings: JSON = ready["settings"]
        self.pid: int = ready["pid"]

    def cpu(self) -> float:
        """The emulator process's CPU seconds so far (all its threads)."""
        self._send("cpu")
        return float(self._read()["cpu"])

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._send("stop")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, command: str) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()

    def _read(self) -> JSON:
        stdout = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            code = self._process.wait(timeout=10)
            raise RuntimeError(f"the emulator process exited (code {code}) before answering")
        answer: JSON = json.loads(line)
        return answer


def _nothing_due() -> list[Any]:
    """The emulator's expiry sweep, skipped: nothing can expire within a benchmark run."""
    return []


def _serve(argv: Sequence[str], stdin: TextIO, stdout: TextIO) -> int:
    options = argparse.ArgumentParser(prog="bench_yookassa.py serve")
    options.add_argument("--keep-expiry-sweep", action="store_true")
    options.add_argument("--idle-timeout", type=float, default=600.0)
    options.add_argument("--max-connections", type=int, default=128)
    args = options.parse_args(argv)

    from paymux_yookassa.emulator import Emulator

    with Emulator(idle_timeout=args.idle_timeout, max_connections=args.max_connections) as emulator:
        if not args.keep_expiry_sweep:
            emulator.store.expire_due = _nothing_due  # type: ignore[method-assign]
        shop = emulator.add_shop()
        print(json.dumps({"settings": emulator.settings(shop), "pid": os.getpid()}), file=stdout)
        stdout.flush()
        for line in stdin:
            command = line.strip()
            if command == "cpu":
                print(json.dumps({"cpu": time.process_time()}), file=stdout)
                stdout.flush()
            elif command == "stop":
                break
    return 0


# -- what every client sends ------------------------------------------------------------------


def basic_authorization(settings: JSON) -> str:
    credentials = f"{settings['shop_id']}:{settings['secret_key']}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def create_body(order_id: str) -> bytes:
    """The create body, written the shortest correct way (the same bytes paymux sends)."""
    return json.dumps(
        {
            "amount": {"value": "1500.00", "currency": "RUB"},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": RETURN_URL},
            "metadata": {"order_id": order_id},
            "description": DESCRIPTION,
        },
        separators=(",", ":"),
    ).encode()


def payment_request(order_id: str) -> paymux.PaymentRequest:
    return paymux.PaymentRequest(
        order_id=order_id,
        amount=AMOUNT,
        currency="RUB",
        description=DESCRIPTION,
        success_url=RETURN_URL,
    )


def check_same_bytes() -> None:
    """paymux's create body is the floor's, byte for byte."""
    from paymux_yookassa.bodies import payment_body

    keyed = dataclasses.replace(payment_request("order-1"), idempotency_key=str(uuid.uuid4()))
    ours = payment_body(keyed, currency="RUB", return_url=None)
    if ours != create_body("order-1"):
        raise RuntimeError(f"the bodies differ: {ours!r} vs {create_body('order-1')!r}")


# -- the floor: the least a correct client does on paymux's HTTP stack --------------------------


class FloorClient:
    """One keep-alive `requests.Session` like paymux's, the auth header made once."""

    def __init__(self, settings: JSON, pool_size: int = POOL_SIZE) -> None:
        self._base_url = str(settings["base_url"])
        self._authorization = basic_authorization(settings)
        self._session = requests.Session()
        self._session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def create(self, order_id: str) -> str:
        answer = self._session.post(
            f"{self._base_url}/v3/payments",
            data=create_body(order_id),
            headers={
                "Authorization": self._authorization,
                "Content-Type": "application/json",
                "Idempotence-Key": str(uuid.uuid4()),
            },
            timeout=TIMEOUT,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"floor create: HTTP {answer.status_code} {answer.text[:200]}")
        payment = answer.json()
        if payment["status"] != "pending":
            raise RuntimeError(f"floor create: unexpected status {payment['status']}")
        return str(payment["id"])

    def status(self, payment_id: str) -> None:
        answer = self._session.get(
            f"{self._base_url}/v3/payments/{payment_id}",
            headers={"Authorization": self._authorization},
            timeout=TIMEOUT,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"floor status: HTTP {answer.status_code} {answer.text[:200]}")
        if answer.json()["status"] != "pending":
            raise RuntimeError("floor status: unexpected status")

    def close(self) -> None:
        self._session.close()


# -- the physical floor: one keep-alive http.client connection ----------------------------------


class PhysicalClient:
    """One `http.client.HTTPConnection` kept alive; reconnects (and counts) if it closes."""

    def __init__(self, settings: JSON) -> None:
        parts = urlsplit(str(settings["base_url"]))
        assert parts.hostname is not None
        self._host = parts.hostname
        self._port = parts.port
        self._authorization = basic_authorization(settings)
        self._connection = self._connect()
        self.reconnects = 0
        """Connections opened after the first: 0 while the emulator keeps the one alive."""

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT[1])

    def _exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        for attempt in (1, 2):
            connection = self._connection
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closed the kept-alive connection: safe to repeat, a status is a
                # GET and a create carries its Idempotence-Key.
                connection.close()
                self._connection = self._connect()
                self.reconnects += 1
                if attempt == 2:
                    raise
                continue
            if answer.will_close:
                connection.close()
                self._connection = self._connect()
                self.reconnects += 1
            if answer.status != 200:
                raise RuntimeError(f"physical {method} {path}: HTTP {answer.status} {data[:200]!r}")
            return json.loads(data)
        raise AssertionError("unreachable")

    def create(self, order_id: str) -> str:
        payment = self._exchange(
            "POST",
            "/v3/payments",
            create_body(order_id),
            {
                "Authorization": self._authorization,
                "Content-Type": "application/json",
                "Idempotence-Key": str(uuid.uuid4()),
            },
        )
        if payment["status"] != "pending":
            raise RuntimeError(f"physical create: unexpected status {payment['status']}")
        return str(payment["id"])

    def status(self, payment_id: str) -> None:
        payment = self._exchange(
            "GET", f"/v3/payments/{payment_id}", None, {"Authorization": self._authorization}
        )
        if payment["status"] != "pending":
            raise RuntimeError("physical status: unexpected status")

    def close(self) -> None:
        self._connection.close()


# -- the clients as the benchmark drives them -------------------------------------------------


def paymux_client(provider: paymux.Provider) -> Client:
    def create(order_id: str) -> str:
        payment = provider.create(payment_request(order_id))
        if payment.status is not PaymentStatus.PENDING:
            raise RuntimeError(f"paymux create: unexpected status {payment.status}")
        return payment.id

    def status(payment_id: str) -> None:
        payment = provider.status(payment_id=payment_id)
        if payment.status is not PaymentStatus.PENDING:
            raise RuntimeError(f"paymux status: unexpected status {payment.status}")

    return Client("paymux", create, status)


# -- measuring ----------------------------------------------------------------------------------


def measure_http(
    rounds: int, sizes: dict[str, int], keep_expiry_sweep: bool
) -> tuple[dict[str, dict[str, list[Run]]], dict[str, dict[int, list[Run]]], JSON]:
    """The sequential and threaded runs of every client, round by round."""
    check_same_bytes()
    with EmulatorProcess(keep_expiry_sweep=keep_expiry_sweep) as emulator:
        provider = paymux.connect(emulator.settings)
        floor = FloorClient(emulator.settings)
        physical = PhysicalClient(emulator.settings)
        clients = [
            paymux_client(provider),
            Client("floor", floor.create, floor.status),
            Client("physical", physical.create, physical.status),
        ]
        for client in clients:  # warm up, and make the payment each client polls
            client.polled = client.create(next_order_id(client.name))
            client.status(client.polled)
        physical.reconnects = 0  # count from here
        shared = clients[:2]
        seq: dict[str, dict[str, list[Run]]] = {
            c.name: {"create": [], "status": []} for c in clients
        }
        conc: dict[str, dict[int, list[Run]]] = {c.name: {n: [] for n in THREADS} for c in shared}
        for number in range(rounds):
            # Short blocks, the clients' order rotating from block to block, so that a drift in
            # the machine's speed lands on every client alike; a round adds its blocks up.
            for operation in ("create", "status"):
                blocks: dict[str, list[Run]] = {c.name: [] for c in clients}
                for block in range(sizes["blocks"]):
                    for client in rotate(clients, number + block):
                        blocks[client.name].append(
                            sequential(client, operation, sizes["block"], emulator)
                        )
                for client in clients:
                    seq[client.name][operation].append(Run.total(blocks[client.name]))
            for threads in THREADS:
                threaded_blocks: dict[str, list[Run]] = {c.name: [] for c in shared}
                for block in range(sizes["threaded_blocks"]):
                    for client in rotate(shared, number + block):
                        threaded_blocks[client.name].append(
                            threaded(client, threads, sizes["threaded_block"], emulator)
                        )
                for client in shared:
                    conc[client.name][threads].append(Run.total(threaded_blocks[client.name]))
            print(f"  round {number + 1}/{rounds} done", flush=True)
        provider.close()
        floor.close()
        physical.close()
        info: JSON = {"emulator_pid": emulator.pid, "physical_reconnects": physical.reconnects}
    return seq, conc, info


# -- notifications, no network ------------------------------------------------------------------


def notification_body() -> bytes:
    """A `payment.succeeded` notification for a paid card payment, as the emulator sends it."""
    from paymux_yookassa.emulator import Shop, StoredPayment

    shop = Shop(NOTIFY_SHOP_ID, NOTIFY_SECRET_KEY, "2345678")
    created = 1_767_225_600.0  # 2026-01-01
    payment = StoredPayment(
        id="30e2b0c0-000f-5000-a000-1b2c3d4e5f60",
        shop=shop,
        amount=AMOUNT,
        currency="RUB",
        capture=True,
        return_url=RETURN_URL,
        confirmation_url="https://yoomoney.ru/checkout/payments/v2/contract",
        description=DESCRIPTION,
        metadata={"order_id": "order-1001"},
        created_at=created,
        confirmation_deadline=created + 3600,
        commission_rate=Decimal("0.035"),
        status="succeeded",
        card_used=True,
        captured_at=created + 42,
    )
    body = {"type": "notification", "event": "payment.succeeded", "object": payment.as_json()}
    return json.dumps(body, ensure_ascii=False).encode()


def per_call(operation: Callable[[], object], calls: int) -> float:
    """Seconds per call of `operation`, over `calls` calls."""
    clock = time.perf_counter
    started = clock()
    for _ in range(calls):
        operation()
    return (clock() - started) / calls


def measure_notifications(rounds: int, calls: int) -> JSON:
    from paymux_yookassa.wire import payment_of

    provider = paymux.connect(
        {"provider": "yookassa", "shop_id": NOTIFY_SHOP_ID, "secret_key": NOTIFY_SECRET_KEY}
    )
    methods = provider.capabilities.notifications
    body = notification_body()
    headers = {"content-type": "application/json", "user-agent": "YooKassa"}
    networks = [ipaddress.ip_network(network) for network in YOOKASSA_NETWORKS]
    if list(provider.allowed_senders()) != networks:
        raise RuntimeError("the provider's default senders are not YooKassa's published networks")
    incoming = paymux.Incoming(
        method="POST", path=NOTIFY_PATH, headers=headers, body=body, sender=SENDER
    )
    found = json.loads(body)["object"]

    def paymux_notification() -> paymux.Notification:
        received = paymux.Incoming(
            method="POST", path=NOTIFY_PATH, headers=headers, body=body, sender=SENDER
        )
        check_sender(received, provider.allowed_senders())
        return provider.read_notification(received)

    def raw_notification() -> tuple[str, str, str]:
        address = ipaddress.ip_address(SENDER)
        if not any(address in network for network in networks):
            raise ValueError(f"notification from {address}")
        data = json.loads(body)
        subject = data["object"]
        return data["event"], subject["id"], subject["status"]

    def paymux_check_sender() -> None:
        check_sender(incoming, provider.allowed_senders())

    def raw_sender_check() -> bool:
        address = ipaddress.ip_address(SENDER)
        return any(address in network for network in networks)

    def paymux_read_notification() -> paymux.Notification:
        return provider.read_notification(incoming)

    def raw_json_read() -> tuple[str, str, str]:
        data = json.loads(body)
        subject = data["object"]
        return data["event"], subject["id"], subject["status"]

    def paymux_incoming_json() -> object:
        return incoming.json()

    def paymux_payment_of() -> paymux.Payment:
        return payment_of(found)

    # Check once that every path works and reads the same notification.
    notification = paymux_notification()
    if notification.kind is not NotificationKind.PAYMENT or (
        notification.subject.id,
        notification.subject.status,
    ) != (found["id"], PaymentStatus.PAID):
        raise RuntimeError(f"paymux read the notification wrong: {notification!r}")
    if raw_notification() != ("payment.succeeded", found["id"], "succeeded"):
        raise RuntimeError("the raw baseline read the notification wrong")

    operations: dict[str, Callable[[], object]] = {
        "raw_notification": raw_notification,
        "paymux_sender_check_and_read": paymux_notification,
        "raw_sender_check": raw_sender_check,
        "paymux_check_sender": paymux_check_sender,
        "raw_json_read": raw_json_read,
        "paymux_read_notification": paymux_read_notification,
        "paymux_incoming_json": paymux_incoming_json,
        "paymux_wire_payment_of": paymux_payment_of,
    }
    for operation in operations.values():  # warm up
        for _ in range(max(1, calls // 10)):
            operation()
    samples: dict[str, list[float]] = {name: [] for name in operations}
    names = list(operations)
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(per_call(operations[name], calls))
    provider.close()
    return {
        "declared_authentication": sorted(method.value for method in methods),
        "refetch_declared": Authentication.REFETCH in methods,
        "body_bytes": len(body),
        "sender": SENDER,
        "calls_per_round": calls,
        "operations": {
            name: {
                "median_us": median(values) * 1e6,
                "rounds_us": [value * 1e6 for value in values],
            }
            for name, values in samples.items()
        },
    }


# -- the report ---------------------------------------------------------------------------------


def yookassa_installation() -> JSON:
    """Which `paymux_yookassa` is measured: the venv holds an installed copy (not an editable
    install), which may lag behind `yookassa/src` until it is installed again."""
    import paymux_yookassa

    installed = Path(paymux_yookassa.__file__).resolve().parent
    source = BENCHMARKS.parent / "yookassa" / "src" / "paymux_yookassa"
    if not source.is_dir() or installed == source.resolve():
        return {"installed": str(installed), "source": None, "differs": []}
    differs = [
        str(path.relative_to(source))
        for path in sorted(source.rglob("*.py"))
        if not (installed / path.relative_to(source)).is_file()
        or (installed / path.relative_to(source)).read_bytes() != path.read_bytes()
    ]
    return {"installed": str(installed), "source": str(source), "differs": differs}


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    options.add_argument(
        "--keep-expiry-sweep",
        action="store_true",
        help="run the emulator as shipped, sweeping every payment for expiry on every request",
    )
    args = options.parse_args()
    rounds = rounds_for(args, full=7)
    quick: bool = args.quick
    sizes = {
        "blocks": 2 if quick else 8,
        "block": 4 if quick else 30,
        "threaded_blocks": 1 if quick else 4,
        "threaded_block": 16 if quick else 128,
        "notification_calls": 200 if quick else 4000,
    }
    print(f"bench_yookassa: {rounds} round(s), sizes {sizes}")
    installation = yookassa_installation()
    if installation["differs"]:
        print(
            f"WARNING: the installed paymux_yookassa ({installation['installed']}) is not "
            f"yookassa/src: {', '.join(installation['differs'])} differ; reinstall it to measure "
            f"the source"
        )

    seq, conc, info = measure_http(rounds, sizes, args.keep_expiry_sweep)
    notifications = measure_notifications(rounds, sizes["notification_calls"])

    sequential_results = {
        name: {operation: summarise(runs) for operation, runs in ops.items()}
        for name, ops in seq.items()
    }
    threaded_results = {
        name: {str(n): summarise(runs) for n, runs in by_threads.items()}
        for name, by_threads in conc.items()
    }

    def seq_value(name: str, operation: str, key: str) -> float:
        return float(sequential_results[name][operation][key])

    def thr_value(name: str, threads: int) -> float:
        return float(threaded_results[name][str(threads)]["throughput_per_s"])

    def us(name: str) -> float:
        return float(notifications["operations"][name]["median_us"])

    rows: list[tuple[object, ...]] = []
    for name, ops in sequential_results.items():
        for operation, result in ops.items():
            rows.append(
                (
                    name,
                    operation,
                    result["throughput_per_s"],
                    result["latency_median_ms"],
                    result["client_cpu_per_call_us"],
                    result["server_cpu_per_call_us"],
                )
            )
    print()
    print("Sequential calls, one client thread (medians over rounds)")
    print(
        table(
            [
                "client",
                "call",
                "calls/s",
                "latency ms",
                "client CPU us/call",
                "emulator CPU us/call",
            ],
            rows,
        )
    )
    rows = []
    for threads in THREADS:
        for name in conc:
            result = threaded_results[name][str(threads)]
            rows.append(
                (
                    threads,
                    name,
                    result["throughput_per_s"],
                    result["latency_median_ms"],
                    result["client_cpu_per_call_us"],
                    result["server_cpu_per_call_us"],
                )
            )
    print()
    print("Status checks from N threads sharing one client (medians over rounds)")
    print(
        table(
            [
                "threads",
                "client",
                "calls/s",
                "latency ms",
                "client CPU us/call",
                "emulator CPU us/call",
            ],
            rows,
        )
    )
    overhead = {
        f"{operation}_over_{base}": seq_value("paymux", operation, "client_cpu_per_call_us")
        - seq_value(base, operation, "client_cpu_per_call_us")
        for operation in ("create", "status")
        for base in ("floor", "physical")
    }
    print()
    print(
        f"paymux's client CPU over the floor's: {overhead['create_over_floor']:.0f} us per "
        f"create, {overhead['status_over_floor']:.0f} us per status; over the physical "
        f"floor's: {overhead['create_over_physical']:.0f} and "
        f"{overhead['status_over_physical']:.0f} us"
    )
    print(
        f"the physical client's keep-alive connection was reopened "
        f"{info['physical_reconnects']} time(s)"
    )

    pairs = {
        "notification_paymux_over_raw": ("paymux_sender_check_and_read", "raw_notification"),
        "sender_check_paymux_over_raw": ("paymux_check_sender", "raw_sender_check"),
        "read_notification_over_raw_json_read": ("paymux_read_notification", "raw_json_read"),
        "incoming_json_over_raw_json_read": ("paymux_incoming_json", "raw_json_read"),
        "wire_payment_of_over_raw_json_read": ("paymux_wire_payment_of", "raw_json_read"),
    }
    rows = [
        (ours, us(ours), theirs, us(theirs), ratio(us(ours), us(theirs)))
        for ours, theirs in pairs.values()
    ]
    print()
    print(
        f"Notifications without network, per call, microseconds (medians over rounds; "
        f"{notifications['body_bytes']}-byte body, sender {SENDER})"
    )
    print(table(["paymux", "us", "baseline", "us", "ratio"], rows))

    ratios: dict[str, float] = {}
    for operation in ("create", "status"):
        for base in ("floor", "physical"):
            ratios[f"{operation}_client_cpu_paymux_over_{base}"] = ratio(
                seq_value("paymux", operation, "client_cpu_per_call_us"),
                seq_value(base, operation, "client_cpu_per_call_us"),
            )
        ratios[f"{operation}_client_cpu_floor_over_physical"] = ratio(
            seq_value("floor", operation, "client_cpu_per_call_us"),
            seq_value("physical", operation, "client_cpu_per_call_us"),
        )
        ratios[f"{operation}_throughput_paymux_over_floor"] = ratio(
            seq_value("paymux", operation, "throughput_per_s"),
            seq_value("floor", operation, "throughput_per_s"),
        )
        ratios[f"{operation}_throughput_paymux_over_physical"] = ratio(
            seq_value("paymux", operation, "throughput_per_s"),
            seq_value("physical", operation, "throughput_per_s"),
        )
    for n in THREADS:
        ratios[f"status_throughput_{n}_threads_paymux_over_floor"] = ratio(
            thr_value("paymux", n), thr_value("floor", n)
        )
    for label, (ours, theirs) in pairs.items():
        ratios[label] = ratio(us(ours), us(theirs))

    def cpu(run: Run) -> float:
        return run.cpu_per_call

    def throughput(run: Run) -> float:
        return run.throughput

    spreads: JSON = {
        f"{operation}_client_cpu_paymux_over_{base}": spread(
            seq["paymux"][operation], seq[base][operation], cpu
        )
        for operation in ("create", "status")
        for base in ("floor", "physical")
    }
    for n in THREADS:
        spreads[f"status_throughput_{n}_threads_paymux_over_floor"] = spread(
            conc["paymux"][n], conc["floor"][n], throughput
        )
    paymux_notes = notifications["operations"]["paymux_sender_check_and_read"]["rounds_us"]
    raw_notes = notifications["operations"]["raw_notification"]["rounds_us"]
    note_ratios = [ratio(a, b) for a, b in zip(paymux_notes, raw_notes, strict=True)]
    spreads["notification_paymux_over_raw"] = {
        "per_round": note_ratios,
        "min": min(note_ratios),
        "max": max(note_ratios),
    }

    def rounds_range(name: str) -> str:
        return f"; round by round {spreads[name]['min']:g} to {spreads[name]['max']:g}"

    process = "time.process_time() of the client process; the emulator is another process"
    targets = [
        Target(
            "client CPU per create, paymux / floor (same HTTP stack)",
            ratios["create_client_cpu_paymux_over_floor"],
            "<=",
            1.10,
            process + rounds_range("create_client_cpu_paymux_over_floor"),
        ),
        Target(
            "client CPU per status, paymux / floor (same HTTP stack)",
            ratios["status_client_cpu_paymux_over_floor"],
            "<=",
            1.10,
            process + rounds_range("status_client_cpu_paymux_over_floor"),
        ),
        Target(
            "client CPU per create, paymux / physical floor",
            ratios["create_client_cpu_paymux_over_physical"],
            "<=",
            1.8,
            "physical floor: one keep-alive http.client connection"
            + rounds_range("create_client_cpu_paymux_over_physical"),
        ),
        Target(
            "client CPU per status, paymux / physical floor",
            ratios["status_client_cpu_paymux_over_physical"],
            "<=",
            1.8,
            "physical floor: one keep-alive http.client connection"
            + rounds_range("status_client_cpu_paymux_over_physical"),
        ),
        Target(
            "16-thread status throughput, paymux / floor",
            ratios["status_throughput_16_threads_paymux_over_floor"],
            ">=",
            0.95,
            "16 threads sharing one provider vs one floor client"
            + rounds_range("status_throughput_16_threads_paymux_over_floor"),
        ),
        Target(
            "notification sender check + read, paymux / raw baseline",
            ratios["notification_paymux_over_raw"],
            "<=",
            2.0,
            "Incoming + check_sender + read_notification vs ip_address in networks + "
            "json.loads + event/id/status; no re-fetch"
            + rounds_range("notification_paymux_over_raw"),
        ),
    ]
    results: JSON = {
        "rounds": rounds,
        "sizes": sizes,
        "sequential": sequential_results,
        "threads": threaded_results,
        "client_cpu_overhead_us": overhead,
        "ratio_spread_over_rounds": spreads,
        "notifications": notifications,
        "emulator": {
            "expiry_sweep_per_request": bool(args.keep_expiry_sweep),
            "pid": info["emulator_pid"],
        },
        "physical_reconnects": info["physical_reconnects"],
        "paymux_yookassa": installation,
        "notes": [
            "All three clients send the same create body bytes (checked at start) with HTTP "
            "Basic auth and a fresh uuid4 Idempotence-Key.",
            "floor's session pool is sized 32 like paymux's, so 16 threads keep their connections.",
            "The emulator's per-request expiry sweep (O(payments held), under its store lock) is "
            + (
                "kept, as shipped."
                if args.keep_expiry_sweep
                else "skipped; a payment read is still checked for expiry."
            ),
            "Notifications: parse_notification also re-fetches the payment over the API (REFETCH); "
            "measured is only the part without network.",
        ],
    }
    return finish("yookassa", args, results, ratios, targets)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(_serve(sys.argv[2:], sys.stdin, sys.stdout))
    raise SystemExit(main())
