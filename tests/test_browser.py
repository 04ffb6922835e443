"""The payment page in a real browser: headless Chromium, driven through Playwright.

Needs the `browser` extra (`pip install '.[browser]'`) and Debian's Chromium
(`apt-get install chromium`); Playwright's own browser downloads are not used. Without either,
the test skips and says so loudly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider
from support import Receiver, payment_request

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = "sandbox-payment-page.png"
"""Written to the test's tmp_path; docs/img/ keeps a copy of it."""


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A fresh page in headless Chromium with its own, empty profile."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("BROWSER TEST NOT RUN: playwright is not installed (pip install '.[browser]')")
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip(f"BROWSER TEST NOT RUN: no Chromium at {CHROMIUM} (apt-get install chromium)")
    executable = CHROMIUM if CHROMIUM.exists() else Path(str(shutil.which("chromium")))
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 720, "height": 600},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_a_customer_pays_in_a_browser_and_the_shop_verifies_what_arrives(
    page: Page, provider: AliKassaProvider, receiver: Receiver, tmp_path: Path
) -> None:
    created = provider.create(
        payment_request(
            description="Order #42: two books",
            notification_url=receiver.url,
            success_url=receiver.success_url,
            fail_url=receiver.fail_url,
        )
    )
    assert created.redirect_url is not None

    page.goto(created.redirect_url)
    assert "500.00 RUB" in page.inner_text("main")
    assert "Order #42: two books" in page.inner_text("main")
    page.screenshot(path=tmp_path / SCREENSHOT, full_page=True)

    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(receiver.success_url)

    assert page.inner_text("h1") == "Back at the shop"
    [returned] = receiver.wait_for_forms(1)
    assert returned.path == "/success"
    redirect = provider.verify_redirect(returned.fields)
    assert (redirect.order_id, redirect.payment_uuid) == (created.order_id, created.raw["uuid"])

    notification = provider.parse_notification(receiver.wait_for(1)[0])
    assert notification.payment.id == created.id
    assert notification.payment.status is PaymentStatus.PAID
    assert provider.status(payment_id=created.id).status is PaymentStatus.PAID
