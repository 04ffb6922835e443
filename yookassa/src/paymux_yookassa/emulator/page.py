"""The payer's side: the payment page at a payment's `confirmation_url` (`/pay/<id>`).

Plain, self-contained HTML (inline CSS, no script, no external assets); everything that came
from a request is escaped. One form posts `action` = `pay`, `decline` or `cancel` back to the
same URL:

- Pay: a two-phase payment (`capture: false`) becomes `waiting_for_capture`, else `succeeded`;
- Decline: the card's bank refuses: `canceled`, party `payment_network`, reason `card_expired`;
- Cancel: the payer gives up. YooKassa has no "canceled by payer": the payment stays pending
  until its confirmation time runs out. The emulator ends it at once the way YooKassa then does:
  `canceled`, party `yoo_money`, reason `expired_on_confirmation`.

The page then sends the browser back to the payment's `return_url` (303 See Other).
"""

from __future__ import annotations

import html

from paymux_yookassa.emulator.objects import StoredPayment
from paymux_yookassa.emulator.wire import money

ACTIONS = {"pay": "Pay", "decline": "Decline", "cancel": "Cancel"}
"""The page's buttons: the `action` value each posts, and its text."""
DECLINE_REASON = "card_expired"
CANCEL_REASON = "expired_on_confirmation"
SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
)
"""Sent with every page: nothing is loaded from anywhere."""

_CSS = """
body { font-family: system-ui, sans-serif; background: #f2f4f7; color: #1f2933; margin: 0;
  padding: 2rem 1rem; }
main { max-width: 28rem; margin: 0 auto; background: #fff; border-radius: 12px;
  padding: 1.5rem; box-shadow: 0 4px 18px rgba(0, 0, 0, .08); }
.banner { font-size: .85rem; background: #fff7d6; color: #7a5b00; padding: .4rem .7rem;
  border-radius: 6px; }
.amount { font-size: 2rem; font-weight: 650; margin: .3rem 0 1rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .4rem 1rem; }
dt { color: #616e7c; }
dd { margin: 0; overflow-wrap: anywhere; }
.buttons { display: flex; gap: .5rem; }
button { flex: 1; font: inherit; font-weight: 600; padding: .7rem; border-radius: 8px;
  border: 1px solid #cbd2d9; background: #fff; cursor: pointer; }
button[value=pay] { background: #1d4ed8; border-color: #1d4ed8; color: #fff; }
.error { background: #fde2e1; color: #8a1c12; padding: .6rem .8rem; border-radius: 8px; }
"""

_OUTCOMES = {
    "pending": "The payment waits for the payer.",
    "waiting_for_capture": "Paid: the funds are held until the shop captures them.",
    "succeeded": "Paid.",
    "canceled": "The payment was canceled.",
}


def payment_page(payment: StoredPayment, *, error: str | None = None) -> str:
    """What the payer sees: the amount, the shop, the description, and three buttons."""
    body = _summary(payment) + _error(error)
    if payment.status == "pending":
        buttons = "\n".join(
            f'  <button type="submit" name="action" value="{value}">{text}</button>'
            for value, text in ACTIONS.items()
        )
        action = _e(f"/pay/{payment.id}")
        body += f'<form method="post" action="{action}" class="buttons">\n{buttons}\n</form>\n'
    else:
        body += f"<p>{_e(_OUTCOMES[payment.status])}</p>\n"
        body += f'<p><a href="{_e(payment.return_url)}">Back to the shop</a></p>\n'
    return _document(f"Payment {payment.id}", body)


def not_found_page() -> str:
    return _document("Payment not found", "<h1>Payment not found</h1>\n")


def _summary(payment: StoredPayment) -> str:
    value = money(payment.amount, payment.currency)["value"]
    rows = [
        ("Shop", payment.shop.shop_id),
        ("Description", payment.description or "—"),
        ("Payment", payment.id),
        ("Status", payment.status),
    ]
    details = "\n".join(f"<dt>{_e(name)}</dt><dd>{_e(text)}</dd>" for name, text in rows)
    return (
        f"<h1>Pay {_e(payment.shop.shop_id)}</h1>\n"
        f'<p class="amount">{_e(value)} {_e(payment.currency)}</p>\n'
        f"<dl>\n{details}\n</dl>\n"
    )


def _error(error: str | None) -> str:
    return "" if error is None else f'<p class="error">{_e(error)}</p>\n'


def _document(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} &middot; YooKassa emulator</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<p class="banner">YooKassa emulator &middot; a test payment, no money moves</p>
{body}</main>
</body>
</html>
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)
