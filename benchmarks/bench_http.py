"""HTTP benchmarks against the AliKassa sandbox on loopback (issue items 1, 2 and 5).

    python benchmarks/bench_http.py            # full run, a minute or two
    python benchmarks/bench_http.py --quick    # smoke run

The sandbox runs in a separate process (see `_common.SandboxProcess`); this process is only the
client, so `time.process_time()` here is the client's CPU and nothing of the server's.

Three clients do the same work, interleaved in every round:

* `paymux`    - `paymux.connect(settings)` once, then `provider.create(...)` and
                `provider.status(...)`: schema validation, PHP-form JSON, RSA signature,
                pooled keep-alive session, answer parsed into a `Payment`, events, hooks.
* `floor`     - the least a correct Python client can do on the HTTP stack paymux uses: key
                decrypted once, one `requests.Session` with `trust_env=False` (keep-alive),
                compact `json.dumps`, sign, post, `r.json()`.
* `physical`  - the physical floor: the same, through one keep-alive `http.client`
                connection and `json.loads` (no pool, not shareable between threads).
* `reference` - the Python sample from AliKassa's "Create Payment" page (the seeds), reproduced
                as written: `json.dumps` with default separators, `password.txt` and
                `private.pem` read and the key decrypted on every call, `requests.post` (a new
                session, hence a new connection) on every call. Only the certificate folder and
                the base URL are parameters instead of constants.

A fourth, `paymux+structlog`, is paymux again while the host has configured structlog (level
INFO, output discarded), the common set-up in applications: it shows what paymux's events cost
when a host has logging switched on.

Measured: sequential create and status (throughput, median latency, client CPU per call, and
the sandbox's CPU per call for reference), then status checks from N threads sharing one client
(N = 1, 4, 16). Every round runs the clients in short blocks whose order rotates, and adds the
blocks up; the numbers are medians over rounds.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from _common import (
    JSON,
    SandboxProcess,
    Target,
    finish,
    parser,
    ratio,
    rounds_for,
    table,
)
from _measure import Client, Run, next_order_id, rotate, sequential, spread, summarise, threaded
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from requests.adapters import HTTPAdapter

import paymux
from paymux.providers.alikassa import AliKassaProvider

USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:84.0) Gecko/20100101 Firefox/84.0"
CUSTOMER_IP = "18.191.80.10"
SERVICE = "payment_card_rub_hpp"
THREADS = (1, 4, 16)


# -- the seeds' Python client, as written (key and connection per call) -----------------------


def reference_request_payment(
    cert_dir: str, base_url: str, method: str, account: str, data: dict[str, Any]
) -> Any:
    """`request_payment` from the seeds' Python sample. Differences from the page: the
    certificate folder and base URL are parameters (the page hard-codes `cert/payment/` and
    `https://api-merchant.alikassa.io`), and it carries type annotations."""
    data_bytes = json.dumps(data).encode("utf-8")
    with open(os.path.join(cert_dir, "password.txt"), "rb") as f:
        password = f.read().strip()
    with open(os.path.join(cert_dir, "private.pem"), "rb") as f:
        private_key = serialization.load_pem_private_key(f.read(), password=password)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    signature = private_key.sign(data_bytes, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    sign = base64.b64encode(signature).decode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Account": account,
        "Sign": sign,
        "User-Agent": "AliKassa2.0 API",
    }
    resp = requests.post(f"{base_url}/{method}", data=data_bytes, headers=headers, timeout=30)
    return resp.json()


# -- the floor: the least a correct Python client can do --------------------------------------


class FloorClient:
    """Key decrypted once, one keep-alive `requests.Session`, compact JSON, sign, post."""

    def __init__(self, account: str, cert_dir: Path, base_url: str, pool_size: int = 32) -> None:
        password = (cert_dir / "password.txt").read_bytes().strip()
        key = serialization.load_pem_private_key(
            (cert_dir / "private.pem").read_bytes(), password=password
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self._account = account
        self._base_url = base_url
        self._session = requests.Session()
        self._session.trust_env = False  # as paymux's: no proxy, netrc or CA variables read
        # Sized like paymux's pool, so that 16 threads do not each open a fresh connection.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def request(self, method: str, data: dict[str, Any]) -> Any:
        body = json.dumps(data, separators=(",", ":")).encode()
        signature = self._key.sign(body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        answer = self._session.post(
            f"{self._base_url}/{method}",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Account": self._account,
                "Sign": base64.b64encode(signature).decode("ascii"),
            },
            timeout=(5, 30),
        )
        if answer.status_code != 200:
            raise RuntimeError(f"floor client: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def close(self) -> None:
        self._session.close()


class PhysicalClient:
    """The physical floor: sign, one exchange over one kept-alive `http.client` connection,
    `json.loads`. What no HTTP library can undercut in Python."""

    def __init__(self, account: str, cert_dir: Path, base_url: str) -> None:
        self._signing = FloorClient(account, cert_dir, base_url)
        address = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(
            address.hostname or "127.0.0.1", address.port, timeout=30
        )
        self._path = address.path.rstrip("/")

    def request(self, method: str, data: dict[str, Any]) -> Any:
        body = json.dumps(data, separators=(",", ":")).encode()
        signature = self._signing._key.sign(body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        self._connection.request(
            "POST",
            f"{self._path}/{method}",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Account": self._signing._account,
                "Sign": base64.b64encode(signature).decode("ascii"),
            },
        )
        answer = self._connection.getresponse()
        content = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"physical client: HTTP {answer.status} {content[:200]!r}")
        return json.loads(content)

    def close(self) -> None:
        self._connection.close()
        self._signing.close()


# -- the clients as the benchmark drives them -------------------------------------------------


def paymux_client(name: str, provider: AliKassaProvider) -> Client:
    options = {
        "service": SERVICE,
        "success_redirect_id": 1,
        "fail_redirect_id": 1,
        "notification_endpoint_id": 5,
    }

    def create(order_id: str) -> str:
        payment = provider.create(
            paymux.PaymentRequest(
                order_id=order_id,
                amount=Decimal("500"),
                customer=paymux.Customer(ip=CUSTOMER_IP, user_agent=USER_AGENT),
                options=options,
            )
        )
        return payment.id

    def status(payment_id: str) -> None:
        payment = provider.status(payment_id=payment_id)
        if payment.status is not paymux.PaymentStatus.PENDING:
            raise RuntimeError(f"unexpected status {payment.status}")

    return Client(name, create, status)


def floor_client(floor: FloorClient | PhysicalClient, name: str = "floor") -> Client:
    def create(order_id: str) -> str:
        answer = floor.request(
            "v1/payment",
            {
                "amount": "500",
                "order_id": order_id,
                "service": SERVICE,
                "customer_ip": CUSTOMER_IP,
                "customer_browser_user_agent": USER_AGENT,
                "success_redirect_id": 1,
                "fail_redirect_id": 1,
                "notification_endpoint_id": 5,
            },
        )
        return str(answer["id"])

    def status(payment_id: str) -> None:
        answer = floor.request("v1/payment/status", {"id": payment_id})
        if answer["payment_status"] != "wait":
            raise RuntimeError(f"unexpected status {answer['payment_status']}")

    return Client(name, create, status)


def reference_client(sandbox: SandboxProcess) -> Client:
    cert_dir = str(sandbox.certificate_dir)
    base_url = sandbox.base_url
    account = sandbox.account

    def create(order_id: str) -> str:
        # The sample's own request, with a unique order_id.
        payment = reference_request_payment(
            cert_dir,
            base_url,
            "v1/payment",
            account,
            {
                "order_id": order_id,
                "amount": 500,
                "customer_browser_user_agent": USER_AGENT,
                "customer_ip": CUSTOMER_IP,
                "success_redirect_id": 1,
                "fail_redirect_id": 1,
                "notification_endpoint_id": 5,
                "service": SERVICE,
            },
        )
        return str(payment["id"])

    def status(payment_id: str) -> None:
        payment = reference_request_payment(
            cert_dir, base_url, "v1/payment/status", account, {"id": payment_id}
        )
        if payment["payment_status"] != "wait":
            raise RuntimeError(f"unexpected status {payment['payment_status']}")

    return Client("reference", create, status)


@contextlib.contextmanager
def host_structlog() -> Iterator[None]:
    """A host that configured structlog at INFO (output discarded) for the duration."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(sink),
            cache_logger_on_first_use=True,
        )
        try:
            yield
        finally:
            structlog.reset_defaults()


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    options.add_argument("--key-size", type=int, default=2048, help="RSA key size (2048)")
    args = options.parse_args()
    rounds = rounds_for(args, full=7)
    quick: bool = args.quick
    sizes = {
        "blocks": 2 if quick else 8,
        "block": 4 if quick else 25,
        "reference_block": 1 if quick else 3,
        "threaded_blocks": 1 if quick else 4,
        "threaded_block": 16 if quick else 128,
    }
    print(f"bench_http: {rounds} round(s), {args.key_size}-bit keys, sizes {sizes}")

    with (
        tempfile.TemporaryDirectory(prefix="paymux-bench-") as folder,
        SandboxProcess(Path(folder), key_size=args.key_size) as sandbox,
    ):
        provider = paymux.connect(sandbox.settings)
        assert isinstance(provider, AliKassaProvider)
        floor = FloorClient(sandbox.account, sandbox.certificate_dir, sandbox.base_url)
        physical = PhysicalClient(sandbox.account, sandbox.certificate_dir, sandbox.base_url)
        clients = [
            paymux_client("paymux", provider),
            floor_client(floor),
            reference_client(sandbox),
            floor_client(physical, "physical"),
        ]
        logged = paymux_client("paymux+structlog", provider)
        logged.context = host_structlog
        clients.append(logged)
        for client in clients:  # warm up, and make the payment each client polls
            with client.context():
                client.polled = client.create(next_order_id(client.name))
                client.status(client.polled)

        seq: dict[str, dict[str, list[Run]]] = {
            c.name: {"create": [], "status": []} for c in clients
        }
        conc: dict[str, dict[int, list[Run]]] = {
            c.name: {n: [] for n in THREADS} for c in clients[:2]
        }
        for number in range(rounds):
            # Short blocks, the clients' order rotating from block to block, so that a drift in
            # the machine's speed lands on every client alike; a round adds its blocks up.
            for operation in ("create", "status"):
                blocks: dict[str, list[Run]] = {c.name: [] for c in clients}
                for block in range(sizes["blocks"]):
                    for client in rotate(clients, number + block):
                        calls = sizes["reference_block" if client.name == "reference" else "block"]
                        blocks[client.name].append(sequential(client, operation, calls, sandbox))
                for client in clients:
                    seq[client.name][operation].append(Run.total(blocks[client.name]))
            for threads in THREADS:
                threaded_blocks: dict[str, list[Run]] = {c.name: [] for c in clients[:2]}
                for block in range(sizes["threaded_blocks"]):
                    for client in rotate(clients[:2], number + block):
                        threaded_blocks[client.name].append(
                            threaded(client, threads, sizes["threaded_block"], sandbox)
                        )
                for client in clients[:2]:
                    conc[client.name][threads].append(Run.total(threaded_blocks[client.name]))
            print(f"  round {number + 1}/{rounds} done", flush=True)
        provider.close()
        floor.close()
        physical.close()

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
                "sandbox CPU us/call",
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
                )
            )
    print()
    print("Status checks from N threads sharing one client (medians over rounds)")
    print(table(["threads", "client", "calls/s", "latency ms", "client CPU us/call"], rows))
    overhead = {
        operation: seq_value("paymux", operation, "client_cpu_per_call_us")
        - seq_value("floor", operation, "client_cpu_per_call_us")
        for operation in ("create", "status")
    }
    print()
    print(
        f"paymux's client CPU over the floor's: {overhead['create']:.0f} us per create, "
        f"{overhead['status']:.0f} us per status"
    )

    ratios = {
        "create_throughput_paymux_over_reference": ratio(
            seq_value("paymux", "create", "throughput_per_s"),
            seq_value("reference", "create", "throughput_per_s"),
        ),
        "status_throughput_paymux_over_reference": ratio(
            seq_value("paymux", "status", "throughput_per_s"),
            seq_value("reference", "status", "throughput_per_s"),
        ),
        "create_throughput_paymux_over_floor": ratio(
            seq_value("paymux", "create", "throughput_per_s"),
            seq_value("floor", "create", "throughput_per_s"),
        ),
        "status_throughput_paymux_over_floor": ratio(
            seq_value("paymux", "status", "throughput_per_s"),
            seq_value("floor", "status", "throughput_per_s"),
        ),
        "create_client_cpu_paymux_over_floor": ratio(
            seq_value("paymux", "create", "client_cpu_per_call_us"),
            seq_value("floor", "create", "client_cpu_per_call_us"),
        ),
        "status_client_cpu_paymux_over_floor": ratio(
            seq_value("paymux", "status", "client_cpu_per_call_us"),
            seq_value("floor", "status", "client_cpu_per_call_us"),
        ),
        "create_client_cpu_paymux_over_physical": ratio(
            seq_value("paymux", "create", "client_cpu_per_call_us"),
            seq_value("physical", "create", "client_cpu_per_call_us"),
        ),
        "status_client_cpu_paymux_over_physical": ratio(
            seq_value("paymux", "status", "client_cpu_per_call_us"),
            seq_value("physical", "status", "client_cpu_per_call_us"),
        ),
        "create_client_cpu_floor_over_physical": ratio(
            seq_value("floor", "create", "client_cpu_per_call_us"),
            seq_value("physical", "create", "client_cpu_per_call_us"),
        ),
        "status_client_cpu_floor_over_physical": ratio(
            seq_value("floor", "status", "client_cpu_per_call_us"),
            seq_value("physical", "status", "client_cpu_per_call_us"),
        ),
        "create_client_cpu_paymux_structlog_over_floor": ratio(
            seq_value("paymux+structlog", "create", "client_cpu_per_call_us"),
            seq_value("floor", "create", "client_cpu_per_call_us"),
        ),
        "status_client_cpu_paymux_structlog_over_floor": ratio(
            seq_value("paymux+structlog", "status", "client_cpu_per_call_us"),
            seq_value("floor", "status", "client_cpu_per_call_us"),
        ),
        **{
            f"status_throughput_{n}_threads_paymux_over_floor": ratio(
                thr_value("paymux", n), thr_value("floor", n)
            )
            for n in THREADS
        },
    }
    spreads = {
        "create_throughput_paymux_over_reference": spread(
            seq["paymux"]["create"], seq["reference"]["create"], lambda run: run.throughput
        ),
        "create_client_cpu_paymux_over_floor": spread(
            seq["paymux"]["create"], seq["floor"]["create"], lambda run: run.cpu_per_call
        ),
        "status_client_cpu_paymux_over_floor": spread(
            seq["paymux"]["status"], seq["floor"]["status"], lambda run: run.cpu_per_call
        ),
        "create_client_cpu_paymux_over_physical": spread(
            seq["paymux"]["create"], seq["physical"]["create"], lambda run: run.cpu_per_call
        ),
        "status_client_cpu_paymux_over_physical": spread(
            seq["paymux"]["status"], seq["physical"]["status"], lambda run: run.cpu_per_call
        ),
        **{
            f"status_throughput_{n}_threads_paymux_over_floor": spread(
                conc["paymux"][n], conc["floor"][n], lambda run: run.throughput
            )
            for n in THREADS
        },
    }

    def rounds_range(name: str) -> str:
        return f"; round by round {spreads[name]['min']:g} to {spreads[name]['max']:g}"

    same_stack = "time.process_time() of the client process (the sandbox is another process)"
    targets = [
        Target(
            "create throughput, paymux / seeds' reference client",
            ratios["create_throughput_paymux_over_reference"],
            ">=",
            20,
            f"{args.key_size}-bit key, sequential creates on loopback keep-alive"
            + rounds_range("create_throughput_paymux_over_reference"),
        ),
        *(
            Target(
                f"client CPU per {operation}, paymux / floor (requests, trust_env=False)",
                ratios[f"{operation}_client_cpu_paymux_over_floor"],
                "<=",
                1.10,
                same_stack + rounds_range(f"{operation}_client_cpu_paymux_over_floor"),
            )
            for operation in ("create", "status")
        ),
        *(
            Target(
                f"client CPU per {operation}, paymux / physical floor (http.client)",
                ratios[f"{operation}_client_cpu_paymux_over_physical"],
                "<=",
                1.8,
                same_stack
                + f"; the floor itself is {ratios[f'{operation}_client_cpu_floor_over_physical']:g}"
                + "x the physical floor"
                + rounds_range(f"{operation}_client_cpu_paymux_over_physical"),
            )
            for operation in ("create", "status")
        ),
        Target(
            "16-thread status throughput, paymux / floor",
            ratios["status_throughput_16_threads_paymux_over_floor"],
            ">=",
            0.95,
            "16 threads sharing one provider vs one floor client"
            + rounds_range("status_throughput_16_threads_paymux_over_floor"),
        ),
    ]
    results: JSON = {
        "key_size": args.key_size,
        "rounds": rounds,
        "sizes": sizes,
        "sequential": sequential_results,
        "threads": threaded_results,
        "client_cpu_overhead_over_floor_us": overhead,
        "ratio_spread_over_rounds": spreads,
        "notes": [
            "paymux+structlog: paymux with the host's structlog configured at INFO, output "
            "discarded; every other row runs with logging unconfigured (paymux's default).",
            "floor's session pool is sized 32 like paymux's, so 16 threads keep their connections; "
            "like paymux's, it has trust_env=False.",
            "physical: one http.client connection, sequential calls only (it is not shareable).",
        ],
    }
    return finish("http", args, results, ratios, targets)


if __name__ == "__main__":
    raise SystemExit(main())
