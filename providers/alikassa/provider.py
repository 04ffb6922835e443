"""The AliKassa provider: RSA-signed JSON requests, signed GET notifications.

It describes; core executes. Each call is built and read by `exchanges` (payments, balance)
and `payouts`; notifications and redirects are verified by `notifications`; the settings and
keys come from `settings`. What is left here is what binds them to one merchant account: the
`Account` and `Sign` headers, and which certificate signs what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from paymux import (
    Balance,
    ConfigurationError,
    Notification,
    Payment,
    PaymentRequest,
    PaymuxError,
    Payout,
    PayoutRequest,
    Redirect,
)
from paymux.providers.alikassa import exchanges, notifications, payouts, responses
from paymux.providers.alikassa.keys import Signer, Verifier
from paymux.providers.alikassa.settings import DEFAULT_BASE_URL, SETTINGS, load_keys
from paymux.providers.base import (
    Answer,
    Authentication,
    Call,
    Capabilities,
    Connection,
    Incoming,
    Lookup,
    NotificationInput,
    Observers,
    Operation,
    Provider,
    Request,
    connection_from,
    validate_settings,
)

__all__ = ["DEFAULT_BASE_URL", "AliKassaProvider"]

PAYOUT_OPERATIONS = frozenset({"payout", "payout_status"})
"""The calls the payout certificate signs; the payment certificate signs every other one."""


class AliKassaProvider(Provider):
    """One AliKassa merchant account. Keys are loaded once; connections are pooled."""

    name = "alikassa"
    capabilities = Capabilities(
        operations={Operation.PAYOUT, Operation.PAYOUT_STATUS, Operation.BALANCE},
        status_by={Lookup.PAYMENT_ID, Lookup.ORDER_ID},
        notifications={Authentication.SIGNATURE},
    )
    option_types: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "service": str,
        "success_redirect_id": int,
        "fail_redirect_id": int,
        "notification_endpoint_id": int,
        "project_url": str,
        "customer_code": str,
        "customer_user_id": str,
    }

    def __init__(
        self,
        *,
        account: str,
        signer: Signer,
        payout_signer: Signer | None = None,
        notification_verifier: Verifier | None = None,
        connection: Connection | None = None,
        service: str | None = None,
        payout_service: str | None = None,
        instance: str = "alikassa",
        observers: Observers | None = None,
    ) -> None:
        self.account = account
        self.default_service = service
        """The payment method of a create whose options name none."""
        self.default_payout_service = payout_service
        """The payout method of a payout whose options name none."""
        self._signer = signer
        self._payout_signer = payout_signer
        self._verifier = notification_verifier
        super().__init__(
            instance=instance,
            connection=connection or Connection(base_url=DEFAULT_BASE_URL),
            observers=observers,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        *,
        instance: str,
        base_dir: Path | None = None,
        observers: Observers | None = None,
    ) -> AliKassaProvider:
        """From configuration values; see the configuration reference for each setting."""
        values = validate_settings(SETTINGS, settings, instance=instance)
        connection = connection_from(values, instance=instance)
        keys = load_keys(values, base_dir)
        return cls(
            account=str(values["account"]),
            signer=keys.signer,
            payout_signer=keys.payout_signer,
            notification_verifier=keys.verifier,
            connection=connection,
            service=values.get("service"),
            payout_service=values.get("payout_service"),
            instance=instance,
            observers=observers,
        )

    # -- what core sends --------------------------------------------------------------------

    def authenticate(self, request: Request) -> Mapping[str, str]:
        """`Account` and `Sign` (over the exact body), from the certificate of the call."""
        signer = self._payout_key() if request.operation in PAYOUT_OPERATIONS else self._signer
        return {"Account": self.account, "Sign": signer.sign(request.body)}

    def read_error(self, request: Request, answer: Answer) -> PaymuxError:
        return responses.error(answer, request.operation)

    def describe_create(self, request: PaymentRequest) -> Call[Payment]:
        """`v1/payment`; the order id is AliKassa's idempotency key (see `exchanges.create`)."""
        return exchanges.create(request, self.default_service)

    def describe_status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Call[Payment]:
        return exchanges.status(payment_id=payment_id, order_id=order_id)

    def describe_balance(self) -> Call[Balance]:
        return exchanges.balance()

    def describe_payout(self, request: PayoutRequest) -> Call[Payout]:
        """`v1/payout`; `ConfigurationError` before anything is sent without a payout key."""
        self._payout_key()
        return payouts.payout(request, self.default_payout_service)

    def describe_payout_status(
        self, *, payout_id: str | None = None, order_id: str | None = None
    ) -> Call[Payout]:
        self._payout_key()
        return payouts.status(payout_id=payout_id, order_id=order_id)

    # -- what the gateway sends -------------------------------------------------------------

    def read_notification(self, incoming: Incoming) -> Notification:
        """A payment or payout notification, its signature verified before it is read."""
        return notifications.read(
            incoming.query,
            verifier=self._notification_key(),
            account=self.account,
            instance=self.instance,
        )

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
        return notifications.verify_redirect(
            data, verifier=self._notification_key(), order_id=order_id, payment_uuid=payment_uuid
        )

    def __repr__(self) -> str:
        head = f"{type(self).__name__}(instance={self.instance!r}, "
        return f"{head}account={self.account!r}, {super().__repr__()[len(head) :]}"

    # -- internals --------------------------------------------------------------------------

    def _payout_key(self) -> Signer:
        if self._payout_signer is None:
            raise ConfigurationError(
                f"instance {self.instance!r}: set payout_certificate_dir (the AliKassa API "
                f"certificate for payouts), or payout_private_key, to make payouts"
            )
        return self._payout_signer

    def _notification_key(self) -> Verifier:
        if self._verifier is None:
            raise ConfigurationError(
                f"instance {self.instance!r}: set notification_public_key (the public.pem of "
                f"the AliKassa notification certificate) to verify notifications"
            )
        return self._verifier
