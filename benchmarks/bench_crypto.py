"""Signing and notification verification (issue item 3), for 2048- and 4096-bit keys.

    python benchmarks/bench_crypto.py            # full run, about half a minute
    python benchmarks/bench_crypto.py --quick    # smoke run (2048-bit only)

No network. Each operation runs on the same bytes as its baseline, interleaved in every round:

* signing:      paymux's `Signer.sign(body)` (which returns the base64 `Sign` header) vs the raw
                `key.sign(body, PKCS1v15(), SHA1())`, and vs raw sign plus base64;
* verification: `provider.parse_notification(params)` vs the raw work any correct handler must
                do on the same fields: base64-decode `sign`, encode the eleven signed fields the
                way PHP's `json_encode` does (`json.dumps` compact, ASCII, `/` escaped), and
                `public_key.verify(...)`. Also `Verifier.verify` alone, and the notification
                given as a URL (parsed by paymux) vs the raw path plus `urllib.parse.parse_qsl`.

Per-call times are wall-clock (`time.perf_counter`) on one thread; the medians are over rounds.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from _common import JSON, Target, finish, median, parser, ratio, rounds_for, table
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from paymux.providers.alikassa import AliKassaProvider, Signer, Verifier, phpjson

ACCOUNT = "93d5df06-996c-48c3-9847-348d6b580b80"
SIGNED_FIELDS = (
    "type",
    "id",
    "order_id",
    "payment_status",
    "amount",
    "payment_amount",
    "commission_amount",
    "is_partial_payment",
    "account",
    "service",
    "desc",
)

# A create body as paymux sends it (PHP json_encode form), about 330 bytes.
CREATE_BODY = phpjson.dumps_bytes(
    {
        "amount": "500.00",
        "order_id": "order-1001",
        "service": "payment_card_rub_hpp",
        "desc": "Order 1001",
        "customer_ip": "18.191.80.10",
        "customer_browser_user_agent": (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:84.0) Gecko/20100101 Firefox/84.0"
        ),
        "success_redirect_id": 1,
        "fail_redirect_id": 1,
        "notification_endpoint_url": "https://shop.example/paymux/notify",
    }
)


def php_json(fields: dict[str, Any]) -> bytes:
    """PHP `json_encode` for the notification's fields, the shortest correct way in Python:
    ASCII-only compact `json.dumps` with `/` escaped (no DEL occurs in these fields)."""
    return json.dumps(fields, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def notification(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The query parameters of a signed `paid` notification, as the gateway sends them."""
    fields = {
        "type": "payment",
        "id": "100000524",
        "order_id": "order-1001",
        "payment_status": "paid",
        "amount": "500.000000000",
        "payment_amount": "500.000000000",
        "commission_amount": "15.000000000",
        "is_partial_payment": "0",
        "account": ACCOUNT,
        "service": "payment_card_rub_hpp",
        "desc": "Order 1001 / shop.example",
    }
    message = php_json({**fields, "id": int(fields["id"])})
    assert message == phpjson.dumps_bytes({**fields, "id": int(fields["id"])})
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return {**fields, "sign": base64.b64encode(signature).decode("ascii")}


def per_call(operation: Callable[[], object], calls: int) -> float:
    """Seconds per call of `operation`, over `calls` calls."""
    clock = time.perf_counter
    started = clock()
    for _ in range(calls):
        operation()
    return (clock() - started) / calls


def measure(key_size: int, rounds: int, quick: bool) -> JSON:
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    public = key.public_key()
    signer = Signer(key, "sha1")
    verifier = Verifier(public, "sha1")
    provider = AliKassaProvider(account=ACCOUNT, signer=signer, notification_verifier=verifier)
    params = notification(key)
    url = "https://shop.example/paymux/notify?" + urlencode(params)
    signature = base64.b64decode(params["sign"])
    sha1 = hashes.SHA1
    pkcs1 = padding.PKCS1v15

    def raw_sign() -> bytes:
        return key.sign(CREATE_BODY, pkcs1(), sha1())

    def raw_sign_b64() -> str:
        return base64.b64encode(key.sign(CREATE_BODY, pkcs1(), sha1())).decode("ascii")

    def paymux_sign() -> str:
        return signer.sign(CREATE_BODY)

    message = php_json({**{name: params[name] for name in SIGNED_FIELDS}, "id": 100000524})

    def raw_verify() -> None:
        public.verify(signature, message, pkcs1(), sha1())

    def paymux_verify() -> None:
        verifier.verify(message, params["sign"])

    def raw_notification(query: dict[str, str]) -> dict[str, Any]:
        fields: dict[str, Any] = {name: query[name] for name in SIGNED_FIELDS}
        fields["id"] = int(fields["id"])
        public.verify(base64.b64decode(query["sign"]), php_json(fields), pkcs1(), sha1())
        return fields

    def raw_notification_params() -> dict[str, Any]:
        return raw_notification(params)

    def raw_notification_url() -> dict[str, Any]:
        return raw_notification(dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)))

    def paymux_notification_params() -> object:
        return provider.parse_notification(params)

    def paymux_notification_url() -> object:
        return provider.parse_notification(url)

    sign_calls = 20 if quick else (300 if key_size <= 2048 else 60)
    verify_calls = 50 if quick else 2000
    operations: dict[str, tuple[Callable[[], object], int]] = {
        "raw_sign": (raw_sign, sign_calls),
        "raw_sign_b64": (raw_sign_b64, sign_calls),
        "paymux_sign": (paymux_sign, sign_calls),
        "raw_verify": (raw_verify, verify_calls),
        "paymux_verifier_verify": (paymux_verify, verify_calls),
        "raw_notification": (raw_notification_params, verify_calls),
        "paymux_parse_notification": (paymux_notification_params, verify_calls),
        "raw_notification_url": (raw_notification_url, verify_calls),
        "paymux_parse_notification_url": (paymux_notification_url, verify_calls),
    }
    for operation, _ in operations.values():  # warm up, and check every path works
        operation()
    samples: dict[str, list[float]] = {name: [] for name in operations}
    names = list(operations)
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            operation, calls = operations[name]
            samples[name].append(per_call(operation, calls))
    return {
        name: {
            "median_us": median(values) * 1e6,
            "rounds_us": [value * 1e6 for value in values],
            "calls_per_round": operations[name][1],
        }
        for name, values in samples.items()
    }


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    rounds = rounds_for(args, full=7)
    sizes = (2048,) if args.quick else (2048, 4096)
    print(f"bench_crypto: {rounds} round(s), key sizes {sizes}, digest sha1")
    results: JSON = {"rounds": rounds, "digest": "sha1", "by_key_size": {}}
    ratios: dict[str, float] = {}
    rows: list[tuple[object, ...]] = []
    for key_size in sizes:
        measured = measure(key_size, rounds, args.quick)
        results["by_key_size"][str(key_size)] = measured

        def us(name: str, table: JSON = measured) -> float:
            return float(table[name]["median_us"])

        pairs = {
            "sign_paymux_over_raw": ("paymux_sign", "raw_sign"),
            "sign_paymux_over_raw_b64": ("paymux_sign", "raw_sign_b64"),
            "verify_paymux_over_raw": ("paymux_verifier_verify", "raw_verify"),
            "parse_notification_over_raw_verify_and_encoding": (
                "paymux_parse_notification",
                "raw_notification",
            ),
            "parse_notification_url_over_raw_with_parse_qsl": (
                "paymux_parse_notification_url",
                "raw_notification_url",
            ),
        }
        for label, (ours, theirs) in pairs.items():
            ratios[f"{label}_{key_size}"] = ratio(us(ours), us(theirs))
            rows.append((key_size, ours, us(ours), theirs, us(theirs), ratio(us(ours), us(theirs))))
    print()
    print("Per call, microseconds (medians over rounds)")
    print(table(["bits", "paymux", "us", "baseline", "us", "ratio"], rows))
    targets = [
        Target(
            f"parse_notification / (raw verify + canonical encoding), {key_size}-bit",
            ratios[f"parse_notification_over_raw_verify_and_encoding_{key_size}"],
            "<=",
            2.0,
            "notification given as a mapping of query parameters",
        )
        for key_size in sizes
    ]
    return finish("crypto", args, results, ratios, targets)


if __name__ == "__main__":
    raise SystemExit(main())
