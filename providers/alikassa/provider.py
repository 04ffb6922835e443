"""The AliKassa provider: RSA-signed JSON requests, signed GET notifications."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import marshmallow
from marshmallow import fields, validate, validates_schema

from paymux import __version__
from paymux.errors import (
    ConfigurationError,
    DuplicateOrder,
    InvalidResponse,
    OrderConflict,
    OutcomeUnknown,
    PaymentNotFound,
    PaymuxError,
    ProviderError,
    SignatureError,
    TLSError,
    TransportError,
    ValidationError,
)
from paymux.events import emit, enabled
from paymux.models import Notification, NotificationKind, Payment, PaymentRequest, Redirect
from paymux.provider import NotificationInput, Provider
from paymux.providers.alikassa import phpjson, responses, schemas, wire
from paymux.providers.alikassa.keys import DIGESTS, Signer, Verifier
from paymux.providers.base import (
    SecretString,
    check_base_url,
    header_value,
    notification_params,
    resolve_path,
    validate_settings,
)
from paymux.registry import Registry, default_registry
from paymux.retry import RetryPolicy
from paymux.transport import Response, Transport, masked_url

DEFAULT_BASE_URL = "https://api-merchant.alikassa.io"
CREATE_METHOD = "v1/payment"
STATUS_METHOD = "v1/payment/status"

_INTEGER = re.compile(r"0|[1-9][0-9]{0,17}")
"""A notification id as the gateway writes it: no sign, no padding, at most 18 digits."""


def _http_url(value: str) -> None:
    """An http(s) URL with a host (checked plainly: marshmallow's URL regex costs ~50 ms once)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed "[", a bad port
        valid = False
    if not valid:
        raise marshmallow.ValidationError("Must be an http:// or https:// URL.")


class SettingsSchema(marshmallow.Schema):
    """The configuration of one AliKassa instance."""

    account = fields.UUID(required=True)
    certificate_dir = fields.String()
    private_key = fields.String()
    password = SecretString()
    password_file = fields.String()
    notification_public_key = fields.String()
    base_url = fields.String(validate=_http_url, load_default=DEFAULT_BASE_URL)
    digest = fields.String(validate=validate.OneOf(sorted(DIGESTS)), load_default="sha1")
    notification_digest = fields.String(validate=validate.OneOf(sorted(DIGESTS)))
    service = fields.String()
    connect_timeout = fields.Float(
        validate=validate.Range(min=0, min_inclusive=False), load_default=5.0
    )
    read_timeout = fields.Float(
        validate=validate.Range(min=0, min_inclusive=False), load_default=30.0
    )
    user_agent = fields.String(validate=header_value)
    reconcile = fields.Boolean(load_default=True)
    max_attempts = fields.Integer(validate=validate.Range(min=1, max=20), load_default=3)
    deadline = fields.Float(validate=validate.Range(min=0, min_inclusive=False), load_default=60.0)
    backoff = fields.Float(validate=validate.Range(min=0), load_default=0.25)
    trust_env = fields.Boolean(load_default=False)
    allow_http = fields.Boolean(load_default=False)

    @validates_schema
    def _one_private_key(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("certificate_dir" in data) == ("private_key" in data):
            raise marshmallow.ValidationError(
                "Give exactly one of certificate_dir (the unpacked certificate folder) "
                "and private_key.",
                "certificate_dir",
            )
        if "password" in data and "password_file" in data:
            raise marshmallow.ValidationError(
                "Give password or password_file, not both.", "password"
            )
        if "certificate_dir" in data and ("password" in data or "password_file" in data):
            raise marshmallow.ValidationError(
                "certificate_dir brings its own password.txt.", "password"
            )


SETTINGS = SettingsSchema()


@dataclass(frozen=True)
class _Expected:
    """What a create asked for: how a payment found by order_id is recognised as this one."""

    order_id: str
    amount: Decimal
    service: str
    currency: str | None


def _short(error: PaymuxError) -> str:
    return error.message.split(";")[0].removeprefix("create: ").removeprefix("status: ")


def _notification_message(params: Mapping[str, str]) -> bytes:
    """What the gateway signs, as its documented PHP check rebuilds it: `json_encode` of the
    eleven fields in order, `id` as an integer, a field left out as null."""
    values: dict[str, str | int | None] = {
        name: params.get(name) for name in schemas.NOTIFICATION_FIELDS
    }
    return phpjson.dumps_bytes({**values, "id": int(params["id"])})


class AliKassaProvider(Provider):
    """One AliKassa merchant account. Keys are loaded once; connections are pooled."""

    name = "alikassa"

    def __init__(
        self,
        *,
        account: str,
        signer: Signer,
        notification_verifier: Verifier | None = None,
        base_url: str = DEFAULT_BASE_URL,
        service: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        user_agent: str | None = None,
        instance: str = "alikassa",
        registry: Registry | None = None,
        reconcile: bool = True,
        retry_policy: RetryPolicy | None = None,
        trust_env: bool = False,
    ) -> None:
        self.account = account
        self.reconcile_creates = reconcile
        """Whether `create` resolves an unknown outcome itself (see `create`)."""
        self.retry_policy = retry_policy or RetryPolicy()
        """Attempts, pauses and deadline of every call; replace it to tune or to test."""
        self.instance = instance
        self.base_url = base_url.rstrip("/")
        self.default_service = service
        self._signer = signer
        self._verifier = notification_verifier
        self._registry = registry or default_registry()
        self._transport = Transport(
            provider=self.name,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent=user_agent or f"paymux/{__version__}",
            on_exchange=self._registry.publish_exchange,
            trust_env=trust_env,
        )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, instance: str, base_dir: Path | None = None
    ) -> AliKassaProvider:
        """From configuration values; see the configuration reference for each setting."""
        values = validate_settings(SETTINGS, settings, instance=instance)
        check_base_url(values["base_url"], instance=instance, allow_http=values["allow_http"])
        digest: str = values["digest"]
        if "certificate_dir" in values:
            signer = Signer.from_certificate_dir(
                resolve_path(values["certificate_dir"], base_dir), digest=digest
            )
        else:
            password_file = values.get("password_file")
            signer = Signer.from_files(
                resolve_path(values["private_key"], base_dir),
                password=values.get("password"),
                password_file=resolve_path(password_file, base_dir) if password_file else None,
                digest=digest,
            )
        public_key = values.get("notification_public_key")
        verifier = (
            Verifier.from_file(
                resolve_path(public_key, base_dir),
                digest=values.get("notification_digest", digest),
            )
            if public_key
            else None
        )
        return cls(
            account=str(values["account"]),
            signer=signer,
            notification_verifier=verifier,
            base_url=values["base_url"],
            service=values.get("service"),
            connect_timeout=values["connect_timeout"],
            read_timeout=values["read_timeout"],
            user_agent=values.get("user_agent"),
            instance=instance,
            reconcile=values["reconcile"],
            retry_policy=RetryPolicy(
                max_attempts=values["max_attempts"],
                backoff=values["backoff"],
                deadline=values["deadline"],
            ),
            trust_env=values["trust_env"],
        )

    def create(self, request: PaymentRequest) -> Payment:
        """Create the payment exactly once, even when the gateway's answer is lost.

        The order_id is AliKassa's idempotency key, and create is idempotent per order: when
        the order already has a payment ("order_id exists": a double click, two workers, a
        retry after a crash), that payment is returned if it has this amount and service, else
        `OrderConflict`. When the outcome is unknown (a 500, a read timeout, a dropped
        connection, an unreadable answer), the payment is looked up by order_id; found, it is
        checked the same way and returned; not found, the very same signed bytes are sent
        again. A request that never left is simply sent again; any other 400 never is.
        `OutcomeUnknown` only when every attempt within `max_attempts` and `deadline` failed, or
        the payment found cannot be told apart from another: `reconcile(order_id)` settles it.
        """
        wire_fields = wire.create_fields(request, self.default_service)
        body = self._validated(schemas.CREATE_PAYMENT, wire_fields)
        # Validated above as a Decimal, an int or a decimal string; money leaves as a Decimal.
        expected = _Expected(
            order_id=request.order_id,
            amount=Decimal(str(request.amount)),
            service=str(wire_fields["service"]),
            currency=request.currency,
        )
        policy = self.retry_policy
        deadline_at = policy.deadline_at()
        tried: list[str] = []
        unknown: OutcomeUnknown | None = None
        attempt = 0
        while True:
            attempt += 1
            outcome = self._create_attempt(body, expected, attempt, deadline_at)
            if isinstance(outcome, Payment):
                self._publish(outcome, "create")
                return outcome
            if isinstance(outcome, TransportError):  # never sent: repeating cannot duplicate
                tried.append(f"create #{attempt}: not sent")
                if attempt >= policy.max_attempts or not policy.wait(attempt, deadline_at):
                    raise self._gave_up(unknown, tried) if unknown is not None else outcome
                continue
            if isinstance(outcome, DuplicateOrder):  # an earlier attempt's or another call's
                tried.append(f"create #{attempt}: order_id exists")
                return self._adopt(expected, outcome, deadline_at, tried, unknown)
            unknown = outcome
            tried.append(f"create #{attempt}: {_short(outcome)}")
            if not self.reconcile_creates:
                raise outcome
            try:
                payment = self._lookup(expected.order_id, deadline_at)
            except PaymentNotFound:
                tried.append("status: not found")
                if attempt >= policy.max_attempts or not policy.wait(attempt, deadline_at):
                    raise self._gave_up(unknown, tried) from None
                continue
            except (TransportError, ProviderError) as error:
                tried.append(f"status: {_short(error)}")
                raise self._gave_up(unknown, tried) from error
            emit(
                "info",
                "paymux.reconcile",
                provider=self.name,
                instance=self.instance,
                order_id=expected.order_id,
                outcome="found",
                tried=list(tried),
            )
            checked = self._checked(payment, expected)
            self._publish(checked, "create")
            return checked

    def reconcile(self, order_id: str, amount: Decimal | None = None) -> Payment:
        """The payment a `create` that raised `OutcomeUnknown` left behind, if any.

        Looks the payment up by order_id (retrying failures); raises `PaymentNotFound` when
        there is none — then the create certainly did not happen and may be sent again — and
        `OrderConflict` when `amount` is given and differs from the payment's (`InvalidResponse`
        when the answer shows no amount to compare).
        """
        payment = self._lookup(order_id, self.retry_policy.deadline_at())
        if amount is not None and payment.amount is None:
            raise InvalidResponse(
                f"reconcile: the payment under order_id {order_id!r} shows no amount to "
                f"compare with {amount}",
                body=dict(payment.raw),
            )
        if amount is not None and payment.amount != Decimal(str(amount)):
            raise OrderConflict(
                f"reconcile: order_id {order_id!r} is a payment of {payment.amount}, not {amount}",
                order_id=order_id,
                payment=payment,
            )
        self._publish(payment, "status")
        return payment

    def status(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment:
        if (payment_id is None) == (order_id is None):
            raise ValidationError({"payment_id": ["Give payment_id or order_id, not both."]})
        fields = {"id": str(payment_id)} if payment_id is not None else {"order_id": order_id}
        payment = self._status(fields, self.retry_policy.deadline_at())
        self._publish(payment, "status")
        return payment

    def parse_notification(self, data: NotificationInput) -> Notification:
        params = notification_params(data)
        missing = [
            name
            for name in (*schemas.NOTIFICATION_FIELDS, "sign")
            if name not in params and name not in schemas.NULLABLE_NOTIFICATION_FIELDS
        ]
        if missing:
            raise SignatureError(f"notification is missing {', '.join(missing)}")
        if not _INTEGER.fullmatch(params["id"]):
            raise SignatureError("notification id is not an integer")
        signed = {name: params[name] for name in schemas.NOTIFICATION_FIELDS if name in params}
        self._notification_verifier().verify(_notification_message(params), params["sign"])
        if params["account"] != self.account:
            raise SignatureError("notification is for another AliKassa account")
        try:
            values = schemas.NOTIFICATION.load(signed)
        except marshmallow.ValidationError as error:
            raise InvalidResponse(f"notification: unexpected values {error.messages}") from None
        payment = Payment(
            provider=self.name,
            id=str(values["id"]),
            order_id=values["order_id"],
            status=responses.status_of(values["payment_status"]),
            amount=values["amount"],
            paid_amount=values["payment_amount"],
            fee=values["commission_amount"],
            is_partial=values["is_partial_payment"],
            raw=signed,
        )
        notification = Notification(
            provider=self.name,
            instance=self.instance,
            account=self.account,
            kind=NotificationKind(values["type"]),
            payment=payment,
            fields=signed,
        )
        emit(
            "info",
            "paymux.notification",
            provider=self.name,
            instance=self.instance,
            payment_id=payment.id,
            order_id=payment.order_id,
            status=payment.status.value,
        )
        if notification.kind is NotificationKind.PAYMENT:  # a payout is no payment update
            self._publish(payment, "notification")
        return notification

    def verify_redirect(
        self,
        data: NotificationInput,
        *,
        order_id: str | None = None,
        payment_uuid: str | None = None,
    ) -> Redirect:
        """Verify the form AliKassa posts when it sends the customer back (order_id, uuid, sign).

        A return is navigation, never proof of payment: the form is the same whether the
        customer paid, failed or gave up, and names no account. Fulfil only on a notification
        or a status, through `paymux.decide`. Pass the `order_id` and `payment_uuid` (the
        created payment's `raw["uuid"]`) the customer should be coming back from: a form for
        any other payment, another merchant's included, raises `SignatureError`.
        """
        params = notification_params(data)
        missing = [name for name in ("order_id", "uuid", "sign") if name not in params]
        if missing:
            raise SignatureError(f"redirect is missing {', '.join(missing)}")
        message = {"order_id": params["order_id"], "uuid": params["uuid"]}
        self._notification_verifier().verify(phpjson.dumps_bytes(message), params["sign"])
        if order_id is not None and params["order_id"] != order_id:
            raise SignatureError(f"redirect is for another order, not {order_id!r}")
        if payment_uuid is not None and params["uuid"] != payment_uuid:
            raise SignatureError(f"redirect is for another payment, not uuid {payment_uuid!r}")
        return Redirect(
            provider=self.name, order_id=params["order_id"], payment_uuid=params["uuid"]
        )

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return (
            f"AliKassaProvider(instance={self.instance!r}, account={self.account!r}, "
            f"base_url={masked_url(self.base_url)!r})"
        )

    def _validated(self, schema: marshmallow.Schema, body: dict[str, Any]) -> bytes:
        errors = schema.validate(body)
        if errors:
            raise ValidationError(wire.generic_errors(errors))
        try:
            return phpjson.dumps_bytes(body)
        except phpjson.PHPJSONError as error:
            raise ValidationError({"_schema": [str(error)]}) from None

    def _create_attempt(
        self,
        body: bytes,
        expected: _Expected,
        attempt: int,
        deadline_at: float | None,
    ) -> Payment | OutcomeUnknown | TransportError | DuplicateOrder:
        """One create: the payment, or how it failed (refusals but "order_id exists" raise)."""
        time_left = self.retry_policy.remaining(deadline_at)
        try:
            response = self._post(
                CREATE_METHOD, body, "create", attempt=attempt, time_left=time_left
            )
        except TLSError:
            raise
        except TransportError as error:
            if not error.request_sent:
                return error
            return OutcomeUnknown(
                f"create: {error.message}; the payment may exist, check order_id "
                f"{expected.order_id!r}",
                order_id=expected.order_id,
                request_id=error.request_id,
            )
        except InvalidResponse as error:  # an answer too large to read may have said "created"
            return self._unknown_from(error, expected)
        if response.status >= 500:
            return self._unknown(expected.order_id, response, responses.error(response, "create"))
        if response.status != 200:
            refusal = responses.error(response, "create")
            if isinstance(refusal, DuplicateOrder):
                return refusal
            raise refusal
        try:
            return responses.created_payment(
                response, expected.amount, expected.order_id, expected.currency
            )
        except InvalidResponse as error:
            return self._unknown(expected.order_id, response, error)

    def _adopt(
        self,
        expected: _Expected,
        refusal: DuplicateOrder,
        deadline_at: float | None,
        tried: list[str],
        unknown: OutcomeUnknown | None,
    ) -> Payment:
        """The payment already under the order_id, made by an earlier attempt or another call."""
        try:
            payment = self._lookup(expected.order_id, deadline_at)
        except (TransportError, ProviderError) as error:
            tried.append(f"status: {_short(error)}")
            raise self._gave_up(unknown or self._unknown_from(refusal, expected), tried) from None
        checked = self._checked(payment, expected, refusal)
        self._publish(checked, "create")
        return checked

    def _checked(
        self, payment: Payment, expected: _Expected, refusal: DuplicateOrder | None = None
    ) -> Payment:
        """`payment` if it is the one asked for; `OrderConflict` if the order_id is taken.

        A payment showing no amount cannot be told from another: `OutcomeUnknown`, not a
        conflict. An `OrderConflict` quotes the "order_id exists" `refusal` when there was one.
        """
        if payment.amount is None:
            raise OutcomeUnknown(
                f"create: the payment under order_id {expected.order_id!r} ({payment.id}) shows "
                f"no amount to compare with {expected.amount}; call "
                f"reconcile({expected.order_id!r}) later",
                order_id=expected.order_id,
                body=dict(payment.raw),
            )
        service = payment.raw.get("service_code")
        differs = []
        if payment.amount != expected.amount:
            differs.append(f"amount {payment.amount} instead of {expected.amount}")
        if service is not None and service != expected.service:
            differs.append(f"service {service} instead of {expected.service}")
        if differs:
            raise OrderConflict(
                f"create: order_id {expected.order_id!r} belongs to another payment "
                f"({payment.id}: {', '.join(differs)})",
                order_id=expected.order_id,
                payment=payment,
                http_status=refusal.http_status if refusal else None,
                body=refusal.body if refusal else None,
                request_id=refusal.request_id if refusal else None,
            )
        return payment

    def _lookup(self, order_id: str, deadline_at: float | None) -> Payment:
        return self._status({"order_id": order_id}, deadline_at)

    def _status(self, fields: dict[str, Any], deadline_at: float | None) -> Payment:
        """One status call, repeated under the retry policy; the payment or a typed error."""
        body = self._validated(schemas.STATUS_REQUEST, fields)
        response = self.retry_policy.call(
            lambda attempt, left: self._post(
                STATUS_METHOD, body, "status", attempt=attempt, time_left=left
            ),
            deadline_at=deadline_at,
        )
        if response.status != 200:
            raise responses.error(response, "status")
        return responses.status_payment(response, fields)

    def _gave_up(self, last: OutcomeUnknown | None, tried: list[str]) -> OutcomeUnknown:
        assert last is not None
        return OutcomeUnknown(
            f"create: outcome unknown after {'; '.join(tried)}; the payment may exist: "
            f"call reconcile({last.order_id!r}) later",
            order_id=last.order_id,
            http_status=last.http_status,
            body=last.body,
            request_id=last.request_id,
        )

    def _unknown_from(self, error: ProviderError, expected: _Expected) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"{error.message}; the payment may exist, check order_id {expected.order_id!r}",
            order_id=expected.order_id,
            http_status=error.http_status,
            body=error.body,
            request_id=error.request_id,
        )

    def _post(
        self,
        method: str,
        body: bytes,
        operation: str,
        *,
        attempt: int = 1,
        time_left: float | None = None,
    ) -> Response:
        headers = {
            "Content-Type": "application/json",
            "Account": self.account,
            "Sign": self._signer.sign(body),
        }
        response = self._transport.post(
            f"{self.base_url}/{method}",
            body,
            headers,
            operation=operation,
            attempt=attempt,
            time_left=time_left,
        )
        if enabled("debug"):
            emit(
                "debug",
                "paymux.alikassa.exchange",
                operation=operation,
                instance=self.instance,
                http_status=response.status,
                request_id=response.request_id,
                request=json.loads(body),
                response=responses.decode(response),
            )
        return response

    def _notification_verifier(self) -> Verifier:
        if self._verifier is None:
            raise ConfigurationError(
                f"instance {self.instance!r}: set notification_public_key (the public.pem of "
                f"the AliKassa notification certificate) to verify notifications"
            )
        return self._verifier

    def _unknown(self, order_id: str, response: Response, cause: ProviderError) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"create: {cause.message}; the payment may exist, check order_id {order_id!r}",
            order_id=order_id,
            http_status=response.status,
            body=cause.body,
            request_id=response.request_id,
        )

    def _publish(self, payment: Payment, source: str) -> None:
        emit(
            "debug",
            "paymux.payment",
            provider=self.name,
            instance=self.instance,
            source=source,
            payment_id=payment.id,
            order_id=payment.order_id,
            status=payment.status.value,
            raw=dict(payment.raw),
        )
        self._registry.publish_payment(payment, source)
