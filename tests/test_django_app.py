"""The Django app `paymux.contrib.django` in a new project, against both gateways' emulators.

Django's settings are configured once per process, and the framework recipes' test configures
them in pytest's, so the project runs in processes of its own: `django-admin startproject`
makes it in a temporary folder, the test adds the app, two instances (an AliKassa merchant of
the sandbox, a YooKassa shop of the emulator) and the URLs as docs/django.md says, `migrate`s a
fresh SQLite file and serves it with `manage.py runserver`. Both gateways run here and notify
that server over real HTTP; checkouts run as `manage.py shell -c` (tests/django_shop.py, the
project's shop app, whose `payment_decided` receiver writes each decision to a file). The
test reads the database file itself, and uses the admin over HTTP as a superuser does.
"""

from __future__ import annotations

import json
import os
import pprint
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux.providers.alikassa import CertificateFolder
from paymux.providers.alikassa.sandbox import Delivery, Sandbox, button_form, read_forms
from paymux_yookassa.emulator import Emulator

pytest.importorskip(
    "django",
    reason="the Django app is NOT TESTED: pip install 'paymux[django]'",
    exc_type=ImportError,
)

TESTS = Path(__file__).resolve().parent
TOTAL = "500.00"
PASSWORD = "correct horse battery staple"
STARTUP = 30.0
"""Seconds the development server may take to answer its first request."""

SETTINGS = """
# -- added by tests/test_django_app.py, as docs/django.md says ------------------------------
INSTALLED_APPS += ["paymux.contrib.django", "django_shop.ShopConfig"]
DATABASES["default"]["OPTIONS"] = {{"transaction_mode": "IMMEDIATE"}}
PAYMUX = {paymux}
"""
URLS = """
from django.urls import include  # noqa: E402

urlpatterns += [path("payments/", include("paymux.contrib.django.urls"))]
"""


@dataclass(frozen=True)
class Checkout:
    """A payment the project's `checkout` created, as tests/django_shop.py prints it."""

    order_id: str
    payment_id: str
    status: str
    redirect_url: str
    return_url: str


@dataclass(frozen=True)
class Site:
    """The running project, its gateways, and ways to look into it."""

    folder: Path
    base: str
    env: dict[str, str]
    sandbox: Sandbox
    emulator: Emulator

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr}"
        return done.stdout

    def checkout(self, *orders: tuple[str, str]) -> list[Checkout]:
        """Check out each (instance, order id) for 500.00, in one `manage.py shell`."""
        listed = json.dumps([[instance, order_id, TOTAL] for instance, order_id in orders])
        printed = self.manage(
            "shell", "-c", f"import django_shop; django_shop.checkouts({listed!r})"
        )
        return [Checkout(**made) for made in json.loads(printed.strip().splitlines()[-1])]

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.folder / "db.sqlite3", timeout=10)) as database:
            return database.execute(sql, params).fetchall()

    def payment(self, order_id: str) -> tuple[str, str, Decimal | None]:
        """The order's payment row: its status, action and paid amount."""
        [(status, action, paid)] = self.query(
            "SELECT status, action, paid_amount FROM paymux_payment WHERE order_id = ?", order_id
        )
        return status, action, None if paid is None else Decimal(str(paid)).normalize()

    def notifications(self, order_id: str) -> list[tuple[str, str, str]]:
        """The order's recorded notifications, oldest first: status, verdict, action."""
        return [
            tuple(row)
            for row in self.query(
                "SELECT status, verdict, action FROM paymux_notification WHERE order_id = ?"
                " ORDER BY id",
                order_id,
            )
        ]

    def decisions(self, order_id: str) -> list[str]:
        """The actions `payment_decided` told the shop's receiver about the order, in order."""
        log = Path(self.env["SHOP_DECISIONS"])
        lines = log.read_text("utf-8").splitlines() if log.exists() else []
        return [item["action"] for item in map(json.loads, lines) if item["order_id"] == order_id]

    def settled(self) -> None:
        """Every notification both gateways had to send is answered (or given up on)."""
        assert self.sandbox.wait_idle(), "AliKassa is still repeating a notification"
        assert self.emulator.wait_idle(), "YooKassa is still repeating a notification"

    def deliveries(self, payment: Checkout) -> list[tuple[int | None, str | int]]:
        """How the site answered each AliKassa delivery of the payment's notification, and its
        fault ("forged", "duplicate") or, for a genuine one, its attempt (1, then 2, ...)."""
        self.settled()
        found: list[Delivery] = [
            item for item in self.sandbox.deliveries if item.payment_id == int(payment.payment_id)
        ]
        return [(item.http_status, item.fault or item.attempt) for item in found]


def order_id(prefix: str = "order-") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def new_project(folder: Path, paymux: dict[str, Any]) -> Path:
    """`django-admin startproject`, then what docs/django.md adds: the app, PAYMUX, the URLs."""
    project = folder / "project"
    project.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "shopsite", str(project)],
        check=True,
        timeout=60,
    )
    settings = project / "shopsite" / "settings.py"
    settings.write_text(
        settings.read_text("utf-8") + SETTINGS.format(paymux=pprint.pformat(paymux)), "utf-8"
    )
    urls = project / "shopsite" / "urls.py"
    urls.write_text(urls.read_text("utf-8") + URLS, "utf-8")
    return project


@contextmanager
def runserver(project: Path, port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """`manage.py runserver` (threaded, no reloader) until the block ends."""
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP
            while True:
                assert server.poll() is None, log.read_text("utf-8")
                assert time.monotonic() < deadline, "runserver did not answer in time"
                try:
                    requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=1)
                    break
                except requests.RequestException:  # not listening yet
                    time.sleep(0.1)
            yield
        finally:
            server.terminate()
            server.wait(10)


@pytest.fixture(scope="module")
def site(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("django")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        Sandbox(
            notification_certificate=notification_certificate.path,
            notification_retry_delays=(0.05, 0.1, 0.2),
        ) as sandbox,
        Emulator(
            retry_delays=(0.05, 0.1, 0.2), webhook_url=f"{base}/payments/notify/yoo"
        ) as emulator,
    ):
        merchant = sandbox.create_merchant(folder / "payment", private_key=payment_key)
        paymux = {
            "instances": {
                "shop": {**merchant.settings, "service": "payment_card_rub_hpp"},
                "yoo": emulator.settings(),
            },
            "ledger": True,
            "site_url": base,
        }
        project = new_project(folder, paymux)
        env = {
            **{key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"},
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
            "SHOP_DECISIONS": str(folder / "decisions.jsonl"),
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        }
        running = Site(project, base, env, sandbox, emulator)
        running.manage("migrate", "--no-input", "-v", "0")
        running.manage(
            "createsuperuser", "--no-input", "--username", "admin", "--email", "admin@shop.example"
        )
        with runserver(project, port, env, folder / "runserver.log"):
            yield running


# -- paying ------------------------------------------------------------------------------


def click(payment: Checkout, button: str, **typed: str) -> requests.Response:
    """The customer clicks `button` on AliKassa's payment page; the page that follows."""
    page = requests.get(payment.redirect_url, timeout=5)
    form = button_form(read_forms(page.text, page.url), button)
    answer = requests.post(form.action, data=form.submission(button, **typed), timeout=5)
    assert answer.status_code == 200, answer.text
    return answer


def come_back(page: requests.Response) -> requests.Response:
    """The customer's browser submits the page's signed return form to the shop."""
    [form] = [form for form in read_forms(page.text, page.url) if form.id == "return"]
    return requests.post(form.action, data=form.submission(), timeout=5)


def shown_status(page: requests.Response) -> str:
    assert page.status_code == 200, page.text
    found = re.search(r'<dd id="status">(\w+)</dd>', page.text)
    assert found is not None, page.text
    return found[1]


# -- the admin, as a superuser uses it -------------------------------------------------------


def csrf(page: requests.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found[1]


def admin(site: Site) -> requests.Session:
    """A browser session logged in to the admin as the superuser."""
    session = requests.Session()
    login = session.get(f"{site.base}/admin/login/", timeout=5)
    answer = session.post(
        f"{site.base}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": csrf(login), "username": "admin", "password": PASSWORD},
        timeout=5,
    )
    assert answer.url == f"{site.base}/admin/", answer.text
    return session


# -- the tests ---------------------------------------------------------------------------


def test_a_new_project_takes_a_payment_through_each_gateway_and_shows_it_in_the_admin(
    site: Site,
) -> None:
    ali, yoo = site.checkout(("shop", order_id()), ("yoo", order_id()))
    assert (ali.status, yoo.status) == ("pending", "pending")

    paid_page = click(ali, "Pay")
    pressed = requests.post(
        yoo.redirect_url, data={"action": "pay"}, allow_redirects=False, timeout=5
    )
    site.settled()

    for payment in (ali, yoo):
        assert site.payment(payment.order_id) == ("paid", "fulfil", Decimal(500))
        assert site.decisions(payment.order_id) == ["fulfil"]
    assert shown_status(come_back(paid_page)) == "paid"  # AliKassa's signed return POST
    assert (pressed.status_code, pressed.headers["Location"]) == (303, yoo.return_url)
    went_back = requests.get(pressed.headers["Location"], timeout=5)
    assert shown_status(went_back) == "paid"
    assert "Thank you" in went_back.text
    changelist = admin(site).get(f"{site.base}/admin/paymux/payment/", timeout=5)
    assert changelist.status_code == 200
    assert ali.order_id in changelist.text
    assert yoo.order_id in changelist.text


def test_of_pay_pay_partially_cancel_fail_only_the_paid_order_is_fulfilled(site: Site) -> None:
    paid, partial, canceled, failed = site.checkout(*(("shop", order_id()) for _ in range(4)))

    click(paid, "Pay")
    click(partial, "Pay partially", amount="1.00")
    click(canceled, "Cancel")
    click(failed, "Fail")
    site.settled()

    assert site.payment(paid.order_id) == ("paid", "fulfil", Decimal(500))
    assert site.payment(partial.order_id) == ("paid", "hold", Decimal(1))
    assert site.payment(canceled.order_id)[:2] == ("canceled", "")
    assert site.payment(failed.order_id)[:2] == ("failed", "")
    assert site.decisions(paid.order_id) == ["fulfil"]
    assert site.decisions(partial.order_id) == ["hold"]
    assert site.decisions(canceled.order_id) == site.decisions(failed.order_id) == ["ignore"]
    lied_to = requests.post(
        f"{canceled.return_url}?{urlencode({'payment_status': 'paid'})}",
        data={"payment_status": "paid", "status": "paid"},
        timeout=5,
    )
    assert shown_status(lied_to) == "canceled", "the return request is never believed"
    assert site.payment(canceled.order_id)[:2] == ("canceled", "")


def test_a_duplicate_is_recorded_as_duplicate_and_not_applied_again(site: Site) -> None:
    [payment] = site.checkout(("shop", order_id("fault-duplicate-notification-")))

    click(payment, "Pay")

    assert site.deliveries(payment) == [(200, 1), (200, "duplicate")]
    assert site.notifications(payment.order_id) == [
        ("paid", "new", "fulfil"),
        ("paid", "duplicate", "ignore"),
    ]
    assert site.decisions(payment.order_id) == ["fulfil"]


def test_a_forgery_is_refused_with_400_and_nothing_is_recorded(site: Site) -> None:
    [payment] = site.checkout(("shop", order_id("fault-forged-notification-")))

    click(payment, "Pay")

    assert site.deliveries(payment) == [(400, "forged"), (200, 1)]
    assert site.notifications(payment.order_id) == [("paid", "new", "fulfil")]
    genuine = site.sandbox.gateway.notification_params(site.sandbox.payment(payment.payment_id))
    forged = {**genuine, "payment_status": "paid", "sign": genuine["sign"][::-1]}
    notify = f"{site.base}/payments/notify"
    assert requests.get(f"{notify}/shop?{urlencode(forged)}", timeout=5).status_code == 400
    assert requests.post(f"{notify}/yoo", json={"event": "x"}, timeout=5).status_code == 400
    assert requests.get(f"{notify}/paypal", timeout=5).status_code == 404
    assert site.notifications(payment.order_id) == [("paid", "new", "fulfil")]
    assert site.decisions(payment.order_id) == ["fulfil"]


def test_a_receiver_that_raises_answers_500_and_the_repeat_is_applied(site: Site) -> None:
    [payment] = site.checkout(("shop", order_id("crash-")))

    click(payment, "Pay")

    assert site.deliveries(payment) == [(500, 1), (200, 2)]
    assert site.notifications(payment.order_id) == [("paid", "new", "fulfil")]
    assert site.payment(payment.order_id)[:2] == ("paid", "fulfil")
    assert site.decisions(payment.order_id) == ["fulfil"]


def test_the_admin_shows_payments_notifications_and_the_ledger_read_only(site: Site) -> None:
    [payment] = site.checkout(("shop", order_id()))
    click(payment, "Pay")
    site.settled()
    of_the_order = "SELECT id FROM paymux_{} WHERE order_id = ?"
    rows = {
        model: site.query(of_the_order.format(model), payment.order_id)
        for model in ("payment", "notification", "ledgerentry")
    }
    session = admin(site)

    for model, [(pk,)] in rows.items():
        page = f"{site.base}/admin/paymux/{model}/{pk}"
        shown = session.get(f"{page}/change/", timeout=5)
        assert shown.status_code == 200, shown.text
        assert 'name="_save"' not in shown.text
        changed = session.post(
            f"{page}/change/", data={"csrfmiddlewaretoken": csrf(shown), "state": "x"}, timeout=5
        )
        assert changed.status_code == 403
        assert session.get(f"{page}/delete/", timeout=5).status_code == 403
        assert session.get(f"{site.base}/admin/paymux/{model}/add/", timeout=5).status_code == 403
        listed = session.get(f"{site.base}/admin/paymux/{model}/", timeout=5)
        assert listed.status_code == 200
        assert "delete_selected" not in listed.text
    assert (
        "written before sending"
        in session.get(
            f"{site.base}/admin/paymux/ledgerentry/{rows['ledgerentry'][0][0]}/change/", timeout=5
        ).text
    )
    assert site.payment(payment.order_id) == ("paid", "fulfil", Decimal(500))
    assert site.notifications(payment.order_id) == [("paid", "new", "fulfil")]


def test_an_operator_resolves_an_open_operation_in_the_admin(site: Site) -> None:
    [payment] = site.checkout(("shop", order_id()))
    [(entry, state)] = site.query(
        "SELECT id, state FROM paymux_ledgerentry WHERE order_id = ?", payment.order_id
    )
    assert state == "pending", "written before sending, waiting for the payer"
    session = admin(site)
    changelist = f"{site.base}/admin/paymux/ledgerentry/"

    def resolve(outcome: str, note: str) -> str:
        listed = session.get(changelist, timeout=5)
        answer = session.post(
            changelist,
            data={
                "csrfmiddlewaretoken": csrf(listed),
                "action": "resolve",
                "_selected_action": entry,
                "index": "0",
                "outcome": outcome,
                "note": note,
            },
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return answer.text

    assert "say why" in resolve("paid", "")
    assert site.query("SELECT state FROM paymux_ledgerentry WHERE id = ?", entry) == [(state,)]
    assert "is settled" in resolve("paid", "confirmed in the cabinet")
    assert "is settled already" in resolve("canceled", "clicked twice")

    [(state, reason, document)] = site.query(
        "SELECT state, reason, document FROM paymux_ledgerentry WHERE id = ?", entry
    )
    assert (state, reason) == ("settled", "resolved as paid: confirmed in the cabinet")
    last = json.loads(document)["history"][-1]
    assert (last["state"], last["by"]) == ("settled", "admin")


def test_the_sweeper_settles_the_ledger_kept_in_the_database(site: Site) -> None:
    [payment] = site.checkout(("shop", order_id()))
    site.sandbox.settle(payment.payment_id, "paid")
    site.settled()
    of_the_order = "SELECT state, status FROM paymux_ledgerentry WHERE order_id = ?"
    assert site.query(of_the_order, payment.order_id) == [("pending", "pending")]

    site.manage(
        "shell",
        "-c",
        "import time, paymux; from paymux.contrib.django.instances import provider;"
        " paymux.sweep(provider('shop'), now=time.time() + 3600)",
    )

    assert site.query(of_the_order, payment.order_id) == [("settled", "paid")]
    assert site.payment(payment.order_id) == ("paid", "fulfil", Decimal(500))


def test_a_change_the_sweeper_finds_is_recorded_and_decided_once_like_its_notification(
    site: Site,
) -> None:
    [payment] = site.checkout(("shop", order_id()))
    site.sandbox.settle(payment.payment_id, "paid", notify=False)  # the notification is lost

    site.manage(
        "shell",
        "-c",
        "import time; from paymux.contrib.django.sweeper import sweep;"
        " sweep('shop', now=time.time() + 3600)",
    )
    assert site.payment(payment.order_id) == ("paid", "fulfil", Decimal(500))
    assert site.decisions(payment.order_id) == ["fulfil"]

    site.sandbox.gateway.notify(site.sandbox.payment(payment.payment_id))  # it comes late
    site.settled()

    assert site.notifications(payment.order_id) == [
        ("paid", "new", "fulfil"),
        ("paid", "duplicate", "ignore"),
    ]
    assert site.decisions(payment.order_id) == ["fulfil"], "decided once"
