"""Adversarial tests: properties of notification signing, a fuzzer, and threads sharing a provider.

Notifications are built the way the gateway builds them (`Gateway.notification_params`): PHP
`json_encode` of the eleven fields in their fixed order, `id` as an integer, signed with the
gateway's notification key. The provider under test belongs to a sandbox merchant whose account
is the one the notifications name. One sandbox and provider serve the module.
"""

from __future__ import annotations

import base64
import binascii
import random
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, Signer, Verifier, phpjson
from paymux.providers.alikassa.keys import load_private_key, read_password
from paymux.providers.alikassa.sandbox import Sandbox
from paymux.providers.alikassa.schemas import NOTIFICATION_FIELDS
from support import payment_request

# -- the module's shop and the gateway's notification key -----------------------------------


@dataclass(frozen=True)
class Shop:
    sandbox: Sandbox
    provider: AliKassaProvider
    gateway: Signer
    """The gateway's notification signer: the sandbox's notification certificate."""

    @property
    def account(self) -> str:
        return self.provider.account


@pytest.fixture(scope="module")
def shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    gateway = Signer(
        load_private_key(
            notification_certificate.private_key.read_bytes(),
            read_password(notification_certificate.password_file),
        ),
        "sha1",
    )
    with Sandbox(notification_certificate=notification_certificate.path) as sandbox:
        merchant = sandbox.create_merchant(
            tmp_path_factory.mktemp("adversarial") / "payment", private_key=payment_key
        )
        provider = paymux.connect(merchant.settings)
        assert isinstance(provider, AliKassaProvider)
        with provider:
            yield Shop(sandbox, provider, gateway)


def signed_message(fields: Mapping[str, str]) -> bytes:
    """What the gateway signs: PHP json_encode of the eleven fields, `id` as an integer."""
    values = {name: fields[name] for name in NOTIFICATION_FIELDS}
    return phpjson.dumps_bytes({**values, "id": int(values["id"])})


def sign(fields: Mapping[str, str], signer: Signer) -> dict[str, str]:
    """The eleven fields and their `sign`, as the gateway sends them."""
    values = {name: fields[name] for name in NOTIFICATION_FIELDS}
    return {**values, "sign": signer.sign(signed_message(values))}


# -- strategies -----------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
"""Any Unicode text a gateway can send: everything but lone surrogates (not UTF-8)."""
IDS = st.integers(min_value=0, max_value=10**18 - 1)
AMOUNTS = st.decimals(min_value=0, max_value=10**9, places=9).map(lambda amount: f"{amount:f}")


def any_fields(account: str) -> st.SearchStrategy[dict[str, str]]:
    """All eleven fields arbitrary (but for the account, which must be the shop's)."""
    values = {name: ANY_TEXT for name in NOTIFICATION_FIELDS}
    values.update(id=IDS.map(str), account=st.just(account))
    return st.fixed_dictionaries(values).map(
        lambda drawn: {name: drawn[name] for name in NOTIFICATION_FIELDS}
    )


def plausible_fields(account: str) -> st.SearchStrategy[dict[str, str]]:
    """Values a real notification could carry; free text (order_id, service, desc) arbitrary."""
    values = {
        "type": st.sampled_from(["payment", "payout"]),
        "id": IDS.map(str),
        "order_id": ANY_TEXT,
        "payment_status": st.sampled_from(["wait", "paid", "cancel", "fail"]),
        "amount": AMOUNTS,
        "payment_amount": AMOUNTS | st.just(""),
        "commission_amount": AMOUNTS | st.just(""),
        "is_partial_payment": st.sampled_from(["0", "1"]),
        "account": st.just(account),
        "service": ANY_TEXT,
        "desc": ANY_TEXT,
    }
    return st.fixed_dictionaries(values).map(
        lambda drawn: {name: drawn[name] for name in NOTIFICATION_FIELDS}
    )


PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- sign -> verify round trip ---------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_any_unicode_values_signed_by_the_gateway_verify(
    shop: Shop, notification_certificate: CertificateFolder, data: st.DataObject
) -> None:
    """All eleven fields arbitrary: the signature always verifies; if the values then make no
    sense (an unknown type, an amount that is not a number), that is InvalidResponse, never a
    SignatureError."""
    fields = data.draw(any_fields(shop.account))
    notification = sign(fields, shop.gateway)
    verifier = Verifier.from_file(notification_certificate.public_key)

    verifier.verify(signed_message(notification), notification["sign"])
    try:
        parsed = shop.provider.parse_notification(notification)
    except paymux.InvalidResponse:
        return
    assert parsed.fields == fields


@PROPERTY
@given(data=st.data())
def test_plausible_notifications_with_any_unicode_text_are_accepted_as_sent(
    shop: Shop, data: st.DataObject
) -> None:
    fields = data.draw(plausible_fields(shop.account))
    notification = sign(fields, shop.gateway)

    for form in (notification, urlencode(notification), urlencode(notification).encode()):
        parsed = shop.provider.parse_notification(form)
        assert parsed.fields == fields
        subject = parsed.payment if fields["type"] == "payment" else parsed.payout
        assert parsed.kind.value == fields["type"]
        assert subject.id == str(int(fields["id"]))
        assert subject.order_id == fields["order_id"]
        assert subject.amount == Decimal(fields["amount"])


@PROPERTY
@given(
    data=st.data(),
    name=st.sampled_from(NOTIFICATION_FIELDS),
    surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
)
def test_a_lone_surrogate_in_any_field_is_refused_and_cannot_be_signed(
    shop: Shop, data: st.DataObject, name: str, surrogate: str
) -> None:
    """A lone surrogate is not UTF-8: PHP cannot json_encode it, and paymux will not verify it."""
    notification = sign(data.draw(plausible_fields(shop.account)), shop.gateway)
    tainted = {**notification, name: notification[name] + surrogate}

    if name != "id":  # the id is signed as an integer: a surrogate makes it no integer at all
        with pytest.raises(phpjson.PHPJSONError):
            signed_message(tainted)
    with pytest.raises(paymux.SignatureError, match=r"UTF-8|not an integer"):
        shop.provider.parse_notification(tainted)


# -- any change to a signed notification is refused ------------------------------------------


def decoded(sign: str) -> bytes | None:
    try:
        return base64.b64decode(sign, validate=True)
    except (binascii.Error, ValueError):
        return None


@PROPERTY
@given(data=st.data(), name=st.sampled_from([*NOTIFICATION_FIELDS, "sign"]))
def test_any_change_to_one_field_or_the_sign_is_refused(
    shop: Shop, data: st.DataObject, name: str
) -> None:
    notification = sign(data.draw(plausible_fields(shop.account)), shop.gateway)
    genuine = notification[name]
    if name == "id":
        changed = str(data.draw(IDS.filter(lambda number: number != int(genuine))))
    elif name == "sign":
        position = data.draw(st.integers(0, len(genuine) - 1))
        replacement = data.draw(ANY_TEXT)
        changed = genuine[:position] + replacement + genuine[position + 1 :]
        assume(decoded(changed) != decoded(genuine))  # see the non-canonical base64 test
    else:
        changed = data.draw(ANY_TEXT.filter(lambda text: text != genuine))

    with pytest.raises(paymux.SignatureError):
        shop.provider.parse_notification({**notification, name: changed})


def test_spellings_of_the_same_signed_message_resolve_to_the_same_payment(shop: Shop) -> None:
    """A zero-padded id is the same integer to PHP's `(int)`, and base64 with non-zero unused
    bits decodes to the same signature: neither changes what was signed, so each may be accepted
    (as the very payment that was signed) or refused, but never be read as another payment."""
    fields = {
        **dict.fromkeys(NOTIFICATION_FIELDS, ""),
        "type": "payment",
        "id": "100000042",
        "order_id": "order-42",
        "payment_status": "paid",
        "amount": "500.000000000",
        "is_partial_payment": "0",
        "account": shop.account,
    }
    notification = sign(fields, shop.gateway)
    sign_value = notification["sign"]
    assert sign_value.endswith("==")
    last = sign_value[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    loose_tail = alphabet[alphabet.index(last) ^ 0b1111]
    variants = [
        {**notification, "id": "000100000042"},
        {**notification, "sign": sign_value[:-3] + loose_tail + "=="},
    ]

    for variant in variants:
        assert signed_message(variant) == signed_message(notification)
        try:
            parsed = shop.provider.parse_notification(variant)
        except paymux.SignatureError:
            continue
        assert parsed.payment.id == "100000042"
        assert parsed.payment.order_id == "order-42"


# -- a fuzzer: 10,000 inputs, typed errors only, no forgery accepted -------------------------

FUZZ_INPUTS = 10_000


class Fuzzer:
    """Mostly plausible notifications, mutated; some noise. Seeded, so every run is the same."""

    MUTATIONS = (
        "genuine",
        "drop field",
        "extra field",
        "change a character",
        "swap two values",
        "value from another notification",
        "sign from another notification",
        "flip a sign character",
        "truncate the sign",
        "pad the id",
        "control characters",
        "lone surrogate",
        "key case",
        "non-text value",
        "list value",
    )
    FORMS = ("dict", "dict of lists", "query", "url", "bytes", "bad bytes", "noise")

    def __init__(self, genuine: list[dict[str, str]], seed: int = 20240613) -> None:
        self.random = random.Random(seed)  # noqa: S311 - test data, not security
        self.genuine = genuine

    def text(self, size: int = 12) -> str:
        pools = ["azAZ09-_ .", "\r\n\t\x00\x7f\x85\u2028", "ЖЁ€💳注", "&=%+?#/;\\\"'"]
        pool = "".join(self.random.sample(pools, self.random.randint(1, len(pools))))
        return "".join(self.random.choice(pool) for _ in range(self.random.randint(0, size)))

    def notification(self) -> tuple[str, Any]:
        random_ = self.random
        params: dict[str, Any] = dict(random_.choice(self.genuine))
        mutation = random_.choice(self.MUTATIONS)
        name = random_.choice([*NOTIFICATION_FIELDS, "sign"])
        other = random_.choice(self.genuine)
        if mutation == "drop field":
            del params[name]
        elif mutation == "extra field":
            params[self.text(6) or "x"] = self.text()
        elif mutation == "change a character" and params[name]:
            position = random_.randrange(len(params[name]))
            value = params[name]
            params[name] = value[:position] + self.text(2) + value[position + 1 :]
        elif mutation == "swap two values":
            first, second = random_.sample(NOTIFICATION_FIELDS, 2)
            params[first], params[second] = params[second], params[first]
        elif mutation == "value from another notification":
            params[name] = other[name]
        elif mutation == "sign from another notification":
            params["sign"] = other["sign"]
        elif mutation == "flip a sign character":
            position = random_.randrange(len(params["sign"]))
            char = random_.choice(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
            )
            params["sign"] = params["sign"][:position] + char + params["sign"][position + 1 :]
        elif mutation == "truncate the sign":
            params["sign"] = params["sign"][: random_.randrange(len(params["sign"]))]
        elif mutation == "pad the id":
            params["id"] = random_.choice(["0", " ", "+", "00", "\t", "\u0660"]) + params["id"]
        elif mutation == "control characters":
            params[name] = params[name] + random_.choice(["\r\n", "\x00", "\x1b[2K", "\u2028"])
        elif mutation == "lone surrogate":
            params[name] = params[name] + chr(random_.randint(0xD800, 0xDFFF))
        elif mutation == "key case":
            params[name.upper()] = params.pop(name)
        elif mutation == "non-text value":
            params[name] = random_.choice([None, 42, 4.2, b"bytes", True, {"a": "b"}])
        elif mutation == "list value":
            params[name] = random_.choice([[], [params[name]] * 2, [params[name], "x"]])
        return mutation, self.shaped(params)

    def shaped(self, params: dict[str, Any]) -> Any:
        form = self.random.choice(self.FORMS)
        if form == "dict":
            return params
        if form == "dict of lists":
            return {
                key: value if isinstance(value, list) else [value] for key, value in params.items()
            }
        query = urlencode(
            {key: str(value) for key, value in params.items()}, errors="surrogatepass"
        )
        if form == "query":
            return query
        if form == "url":
            return f"https://shop.example/notify?{query}"
        if form == "bytes":
            return query.encode("utf-8", "surrogatepass")
        if form == "bad bytes":
            raw = bytearray(query.encode("utf-8", "surrogatepass"))
            raw[self.random.randrange(len(raw))] = self.random.randint(0x80, 0xFF)
            return bytes(raw)
        return self.random.choice(
            [
                self.random.randbytes(self.random.randint(0, 300)),
                self.text(300),
                "&".join(f"{self.text(5)}={self.text(10)}" for _ in range(12)),
                "%" + self.text(4),
                None,
                42,
                ["type", "payment"],
            ]
        )


def test_ten_thousand_fuzzed_notifications_raise_only_typed_errors_and_no_forgery_passes(
    shop: Shop,
) -> None:
    rng = random.Random(7)  # noqa: S311 - test data
    genuine = [
        sign(
            {
                "type": rng.choice(["payment", "payout"]),
                "id": str(rng.randrange(10**9)),
                "order_id": f"order-{index}",
                "payment_status": rng.choice(["wait", "paid", "cancel", "fail"]),
                "amount": f"{rng.randrange(100, 5000)}.000000000",
                "payment_amount": rng.choice(["", f"{rng.randrange(100, 5000)}.000000000"]),
                "commission_amount": rng.choice(["", "1.500000000"]),
                "is_partial_payment": rng.choice(["0", "1"]),
                "account": shop.account,
                "service": "payment_card_rub_hpp",
                "desc": rng.choice(["", "Order\r\n№42 💳", 'a/b "q" \\ <&>']),
            },
            shop.gateway,
        )
        for index in range(24)
    ]
    genuinely_signed = {signed_message(notification) for notification in genuine}
    fuzzer = Fuzzer(genuine)
    errors: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    forgeries = []

    for _ in range(FUZZ_INPUTS):
        mutation, data = fuzzer.notification()
        try:
            parsed = shop.provider.parse_notification(data)
        except paymux.PaymuxError as error:
            errors[type(error).__name__] += 1
            continue
        accepted[mutation] += 1
        if signed_message(parsed.fields) not in genuinely_signed:
            forgeries.append(data)

    print(
        f"\nfuzzed {FUZZ_INPUTS}: accepted {sum(accepted.values())} {dict(accepted)}, "
        f"refused {sum(errors.values())} {dict(errors)}, forgeries accepted {len(forgeries)}"
    )
    assert forgeries == []
    assert sum(accepted.values()) + sum(errors.values()) == FUZZ_INPUTS
    assert accepted["genuine"] > 0, "genuine notifications get through"
    assert errors["SignatureError"] > FUZZ_INPUTS / 2


# -- many threads sharing one provider --------------------------------------------------------

THREADS = 16
PAYMENTS_PER_THREAD = 4


@dataclass(frozen=True)
class Outcome:
    order_id: str
    payment_id: str
    statuses: tuple[PaymentStatus, PaymentStatus]
    notified: tuple[str, str | None, PaymentStatus]


def test_threads_sharing_one_provider_get_correct_results_and_the_sandbox_exact_payments(
    shop: Shop,
) -> None:
    start = threading.Barrier(THREADS)
    before = {payment.order_id for payment in shop.sandbox.payments()}

    def shopper(worker: int) -> list[Outcome]:
        start.wait()
        outcomes = []
        for number in range(PAYMENTS_PER_THREAD):
            request = payment_request(order_id=f"thread-{worker}-{number}-{shop.account[:8]}")
            created = shop.provider.create(request)
            pending = shop.provider.status(order_id=request.order_id).status
            shop.sandbox.settle(created.id, "paid")
            paid = shop.provider.status(payment_id=created.id).status
            params = shop.sandbox.gateway.notification_params(shop.sandbox.payment(created.id))
            notification = shop.provider.parse_notification(urlencode(params))
            payment = notification.payment
            outcomes.append(
                Outcome(
                    request.order_id,
                    created.id,
                    (pending, paid),
                    (payment.id, payment.order_id, payment.status),
                )
            )
        return outcomes

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results: list[Outcome] = [
            outcome
            for future in [pool.submit(shopper, worker) for worker in range(THREADS)]
            for outcome in future.result()
        ]

    assert len(results) == THREADS * PAYMENTS_PER_THREAD
    for outcome in results:
        assert outcome.statuses == (PaymentStatus.PENDING, PaymentStatus.PAID)
        assert outcome.notified == (outcome.payment_id, outcome.order_id, PaymentStatus.PAID)
    stored = {
        payment.order_id: str(payment.id)
        for payment in shop.sandbox.payments()
        if payment.order_id not in before
    }
    assert stored == {outcome.order_id: outcome.payment_id for outcome in results}
    assert len(shop.sandbox.payments()) == len(before) + THREADS * PAYMENTS_PER_THREAD
