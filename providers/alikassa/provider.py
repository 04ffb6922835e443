"""The AliKassa provider: RSA-signed JSON requests, signed GET notifications."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import marshmallow
from marshmallow import fields, validate, validates_schema

from paymux import __version__
from paymux.errors import (
    ConfigurationError,
    InvalidResponse,
    OutcomeUnknown,
    ProviderError,
    SignatureError,
    TransportError,
    ValidationError,
)
from paymux.events import emit, enabled
from paymux.models import Notification, NotificationKind, Payment, PaymentRequest, Redirect
from paymux.provider import NotificationInput, Provider
from paymux.providers.alikassa import phpjson, responses, schemas, wire
from paymux.providers.alikassa.keys import DIGESTS, Signer, Verifier
from paymux.providers.base import notification_params, resolve_path, validate_settings
from paymux.registry import Registry, default_registry
from paymux.transport import Response, Transport

DEFAULT_BASE_URL = "https://api-merchant.alikassa.io"
CREATE_METHOD = "v1/payment"
STATUS_METHOD = "v1/payment/status"

_INTEGER = re.compile(r"[0-9]{1,18}")


def _http_url(value: str) -> None:
    """An http(s) URL with a host (checked plainly: marshmallow's URL regex costs ~50 ms once)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise marshmallow.ValidationError("Must be an http:// or https:// URL.")


class SettingsSchema(marshmallow.Schema):
    """The configuration of one AliKassa instance."""

    account = fields.UUID(required=True)
    certificate_dir = fields.String()
    private_key = fields.String()
    password = fields.String()
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
    user_agent = fields.String()

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
    ) -> None:
        self.account = account
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
        )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, instance: str, base_dir: Path | None = None
    ) -> AliKassaProvider:
        """From configuration values; see the configuration reference for each setting."""
        values = validate_settings(SETTINGS, settings, instance=instance)
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
        )

    def create(self, request: PaymentRequest) -> Payment:
        body = self._validated(
            schemas.CREATE_PAYMENT, wire.create_fields(request, self.default_service)
        )
        try:
            response = self._post(CREATE_METHOD, body, "create")
        except TransportError as error:
            if not error.request_sent:
                raise
            raise OutcomeUnknown(
                f"create: {error.message}; the payment may exist, check order_id "
                f"{request.order_id!r}",
                order_id=request.order_id,
                request_id=error.request_id,
            ) from error
        if response.status >= 500:
            raise self._unknown(request.order_id, response, responses.error(response, "create"))
        if response.status != 200:
            raise responses.error(response, "create")
        # Validated above as a Decimal, an int or a decimal string; money leaves as a Decimal.
        amount = Decimal(str(request.amount))
        try:
            payment = responses.created_payment(
                response, amount, request.order_id, request.currency
            )
        except InvalidResponse as error:
            raise self._unknown(request.order_id, response, error) from error
        self._publish(payment, "create")
        return payment

    def status(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment:
        if (payment_id is None) == (order_id is None):
            raise ValidationError({"payment_id": ["Give payment_id or order_id, not both."]})
        fields = {"id": str(payment_id)} if payment_id is not None else {"order_id": order_id}
        body = self._validated(schemas.STATUS_REQUEST, fields)
        response = self._post(STATUS_METHOD, body, "status")
        if response.status != 200:
            raise responses.error(response, "status")
        payment = responses.status_payment(response)
        self._publish(payment, "status")
        return payment

    def parse_notification(self, data: NotificationInput) -> Notification:
        params = notification_params(data)
        missing = [name for name in (*schemas.NOTIFICATION_FIELDS, "sign") if name not in params]
        if missing:
            raise SignatureError(f"notification is missing {', '.join(missing)}")
        if not _INTEGER.fullmatch(params["id"]):
            raise SignatureError("notification id is not an integer")
        signed = {name: params[name] for name in schemas.NOTIFICATION_FIELDS}
        self._notification_verifier().verify(
            phpjson.dumps_bytes({**signed, "id": int(params["id"])}), params["sign"]
        )
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
        self._publish(payment, "notification")
        return notification

    def verify_redirect(self, data: NotificationInput) -> Redirect:
        """Verify the form AliKassa posts when it sends the customer back (order_id, uuid, sign)."""
        params = notification_params(data)
        missing = [name for name in ("order_id", "uuid", "sign") if name not in params]
        if missing:
            raise SignatureError(f"redirect is missing {', '.join(missing)}")
        message = {"order_id": params["order_id"], "uuid": params["uuid"]}
        self._notification_verifier().verify(phpjson.dumps_bytes(message), params["sign"])
        return Redirect(
            provider=self.name, order_id=params["order_id"], payment_uuid=params["uuid"]
        )

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return (
            f"AliKassaProvider(instance={self.instance!r}, account={self.account!r}, "
            f"base_url={self.base_url!r})"
        )

    def _validated(self, schema: marshmallow.Schema, body: dict[str, Any]) -> bytes:
        errors = schema.validate(body)
        if errors:
            raise ValidationError(wire.generic_errors(errors))
        try:
            return phpjson.dumps_bytes(body)
        except phpjson.PHPJSONError as error:
            raise ValidationError({"_schema": [str(error)]}) from None

    def _post(self, method: str, body: bytes, operation: str) -> Response:
        headers = {
            "Content-Type": "application/json",
            "Account": self.account,
            "Sign": self._signer.sign(body),
        }
        response = self._transport.post(
            f"{self.base_url}/{method}", body, headers, operation=operation
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
