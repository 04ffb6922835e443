"""The customer's side of the sandbox: the HTML payment page and what follows it.

Plain, self-contained HTML (inline CSS, one inline script that submits the return form, no
external assets). Everything that came from a request is escaped.
"""

from __future__ import annotations

import html
import math
from decimal import Decimal

from paymux.providers.alikassa.sandbox.payments import StoredPayment

ACTIONS = {"pay": "Pay", "partial": "Pay partially", "cancel": "Cancel", "fail": "Fail"}
"""The page's buttons: the `action` value each one posts, and its text."""

SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""Sent with every page: nothing is loaded from anywhere (forms may still post to the shop)."""

_CSS = """
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2933; background: #eef1f5; }
body { margin: 0; padding: 2rem 1rem; }
main { max-width: 30rem; margin: 0 auto; background: #fff; border-radius: 12px;
  box-shadow: 0 1px 3px rgba(0, 0, 0, .08), 0 8px 24px rgba(0, 0, 0, .06);
  padding: 1.75rem; overflow: hidden; }
.banner { margin: -1.75rem -1.75rem 1.25rem; padding: .6rem 1.75rem; font-size: .85rem;
  background: #fff7d6; color: #7a5b00; border-bottom: 1px solid #f1e3a6; }
h1 { font-size: 1.3rem; margin: 0; }
.amount { font-size: 2rem; font-weight: 650; margin: .2rem 0 1.1rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .45rem 1rem; margin: 0 0 1.5rem;
  font-size: .95rem; }
dt { color: #616e7c; }
dd { margin: 0; overflow-wrap: anywhere; }
.status { display: inline-block; padding: 0 .55rem; border-radius: 999px; font-size: .85rem;
  font-weight: 600; background: #e4e7eb; }
.status-wait { background: #e0ecff; color: #1d4ed8; }
.status-paid { background: #dcf5e3; color: #157f3b; }
.status-cancel { background: #eceff3; color: #52606d; }
.status-fail { background: #fde2e1; color: #b42318; }
form { margin: 0 0 .75rem; }
label { display: block; font-size: .9rem; color: #616e7c; margin-bottom: .3rem; }
button { font: inherit; font-weight: 600; border-radius: 8px; border: 1px solid #cbd2d9;
  background: #fff; color: #1f2933; padding: .6rem 1rem; cursor: pointer; }
button:hover { background: #f5f7fa; }
.primary { width: 100%; background: #1d4ed8; border-color: #1d4ed8; color: #fff;
  padding: .8rem 1rem; font-size: 1.05rem; }
.primary:hover { background: #1e40af; }
.inline { display: flex; gap: .5rem; }
.inline input { flex: 1; min-width: 0; font: inherit; padding: .55rem .75rem;
  border: 1px solid #cbd2d9; border-radius: 8px; }
.row { display: flex; gap: .5rem; }
.row button { flex: 1; }
.danger { color: #b42318; border-color: #f4b4ae; }
.error { background: #fde2e1; color: #8a1c12; padding: .6rem .8rem; border-radius: 8px; }
.note { color: #616e7c; font-size: .85rem; margin: .75rem 0 0; }
"""

_STATUS_WORDS = {
    "wait": "waiting for payment",
    "paid": "payment received",
    "cancel": "canceled",
    "fail": "failed",
}


def payment_page(
    payment: StoredPayment,
    now: float,
    *,
    error: str | None = None,
    typed_amount: str = "",
    return_form: dict[str, str] | None = None,
) -> str:
    """The page at the payment's `url`: what is paid for, and the customer's four choices.

    Once the payment no longer waits it shows the outcome instead (see `outcome_page`).
    """
    if payment.status != "wait":
        return outcome_page(payment, error=error, return_form=return_form)
    action = _e(f"/pay/{payment.uuid}")
    amount = _e(_money(payment.amount))
    currency = _e(payment.service.currency)
    body = f"""
<h1>Payment {payment.id}</h1>
<p class="amount">{amount} {currency}</p>
{_details(payment, time_left=payment.expires_at - now)}
{_error(error)}
<form method="post" action="{action}">
  <button class="primary" type="submit" name="action" value="pay">{ACTIONS["pay"]}</button>
</form>
<form method="post" action="{action}">
  <label for="amount">Or pay part of it now ({currency}, above 0 and below {amount})</label>
  <div class="inline">
    <input id="amount" name="amount" inputmode="decimal" autocomplete="off" required
      placeholder="e.g. {_e(_money(payment.amount / 2))}" value="{_e(typed_amount)}">
    <button type="submit" name="action" value="partial">{ACTIONS["partial"]}</button>
  </div>
</form>
<form method="post" action="{action}" class="row">
  <button type="submit" name="action" value="cancel">{ACTIONS["cancel"]}</button>
  <button class="danger" type="submit" name="action" value="fail">{ACTIONS["fail"]}</button>
</form>
<p class="note">Cancel: the customer gives up. Fail: the payment is declined, as by a bank.</p>
"""
    return _document(f"Payment {payment.id}", body)


def outcome_page(
    payment: StoredPayment,
    *,
    error: str | None = None,
    return_form: dict[str, str] | None = None,
) -> str:
    """The final state of a payment that no longer waits, for a customer who comes back to it.

    With the signed `return_form` and a return URL, a button takes the customer to the shop.
    """
    title, message = outcome(payment)
    body = f"""
<h1>{_e(title)}</h1>
<p class="amount">{_e(_money(payment.amount))} {_e(payment.service.currency)}</p>
{_details(payment, time_left=None)}
{_error(error)}
<p>{_e(message)}</p>
"""
    url = payment.return_url
    if url is not None and return_form is not None:
        body += _return_form(url, return_form, autosubmit=False)
    else:
        body += '<p class="note">You can close this page.</p>\n'
    return _document(title, body)


def return_page(payment: StoredPayment, url: str, form: dict[str, str]) -> str:
    """Sends the customer's browser back to the shop: a signed POST form that submits itself.

    The visible button does the same for a browser without JavaScript.
    """
    title, message = outcome(payment)
    body = f"""
<h1>{_e(title)}</h1>
<p>{_e(message)}</p>
<p>Taking you back to the shop&hellip;</p>
{_return_form(url, form, autosubmit=True)}"""
    return _document(title, body)


def not_found_page() -> str:
    body = """
<h1>Payment not found</h1>
<p>There is no payment at this address. Check the link the shop gave you.</p>
"""
    return _document("Payment not found", body)


def outcome(payment: StoredPayment) -> tuple[str, str]:
    """A title and one sentence for the customer, by status."""
    currency = payment.service.currency
    if payment.status == "paid":
        paid = payment.payment_amount if payment.payment_amount is not None else payment.amount
        if payment.is_partial:
            return (
                "Partial payment received",
                f"{_money(paid)} of {_money(payment.amount)} {currency} were paid.",
            )
        return "Payment received", f"{_money(paid)} {currency} were paid."
    if payment.status == "cancel" and payment.expired:
        return (
            "Payment expired",
            "Its time ran out before it was paid, so it is canceled. Nothing was charged.",
        )
    if payment.status == "cancel":
        return "Payment canceled", "The payment was canceled. Nothing was charged."
    if payment.status == "fail":
        return "Payment failed", "The payment was declined. Nothing was charged."
    return "Waiting for payment", "The payment has not been paid yet."


def partial_amount(typed: str, payment: StoredPayment) -> Decimal:
    """The amount typed for a partial payment: above 0, below the amount, at most 2 decimals.

    A comma is read as the decimal point. Raises ValueError with a sentence for the customer.
    """
    try:
        value = Decimal(typed.strip().replace(",", "."))
    except ArithmeticError:
        value = None
    exponent = value.as_tuple().exponent if value is not None else 0
    if (
        value is None
        or not value.is_finite()
        or not isinstance(exponent, int)
        or exponent < -2
        or not 0 < value < payment.amount
    ):
        raise ValueError(
            f"Enter an amount above 0 and below {_money(payment.amount)} "
            f"{payment.service.currency}, with at most two decimals."
        )
    return value


def duration(seconds: float) -> str:
    """`59 min 05 s`; `expired` at or below zero."""
    if seconds <= 0:
        return "expired"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _details(payment: StoredPayment, *, time_left: float | None) -> str:
    rows = [
        ("Description", payment.description or "\N{EM DASH}"),
        ("Order", payment.order_id),
        ("Service", payment.service.code),
        ("Currency", payment.service.currency),
    ]
    text = "".join(f"\n  <dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in rows)
    word = _STATUS_WORDS.get(payment.status, payment.status)
    text += (
        f'\n  <dt>Status</dt><dd><span class="status status-{_e(payment.status)}">'
        f"{_e(payment.status)}</span> {_e(word)}</dd>"
    )
    if time_left is not None:
        text += f'\n  <dt>Time left</dt><dd id="time-left">{_e(duration(time_left))}</dd>'
    return f"<dl>{text}\n</dl>"


def _error(error: str | None) -> str:
    return "" if error is None else f'<p class="error" role="alert">{_e(error)}</p>'


def _return_form(url: str, fields: dict[str, str], *, autosubmit: bool) -> str:
    inputs = "".join(
        f'\n  <input type="hidden" name="{_e(name)}" value="{_e(value)}">'
        for name, value in fields.items()
    )
    text = (
        f'<form id="return" method="post" action="{_e(url)}">{inputs}\n'
        '  <button class="primary" type="submit">Return to the shop</button>\n</form>\n'
    )
    if autosubmit:
        text += '<script>document.getElementById("return").submit();</script>\n'
    return text


def _document(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} &middot; AliKassa sandbox</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<p class="banner">AliKassa sandbox &middot; a test payment, no money moves</p>
{body.strip()}
</main>
</body>
</html>
"""


def _money(amount: Decimal) -> str:
    """`500.00`: two decimals, as the customer reads an amount."""
    return str(Decimal(amount).quantize(Decimal("0.01")))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
