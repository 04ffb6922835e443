"""A sandbox with a state folder survives its restarts: a shop keeps its configuration, its
accounts, keys and payments, and never meets a payment id twice.

Each test starts real sandboxes on loopback one after the other on the same folder, as a
developer restarting `paymux sandbox --state DIR` does.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Sandbox
from paymux.providers.alikassa.sandbox.state import STATE_FILE
from support import Receiver, payment_request


def on(state: Path, port: int = 0) -> Sandbox:
    """A sandbox on the state folder, to start with `with`."""
    return Sandbox(state_dir=state, port=port)


def connected(settings: dict[str, str]) -> AliKassaProvider:
    provider = paymux.connect(settings)
    assert isinstance(provider, AliKassaProvider)
    return provider


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "sandbox-state"


@pytest.fixture
def first(state: Path) -> Iterator[Sandbox]:
    """The first sandbox on the state folder; stopped after the test if it still runs."""
    sandbox = on(state).start()
    yield sandbox
    sandbox.stop()


def port_of(sandbox: Sandbox) -> int:
    return int(sandbox.url.rsplit(":", 1)[1])


def test_a_restarted_sandbox_takes_the_shops_next_create_and_knows_the_earlier_payments(
    state: Path, first: Sandbox, receiver: Receiver
) -> None:
    merchant = first.merchant(state / "payment")
    with connected(merchant.settings) as provider:
        before = provider.create(payment_request(notification_url=receiver.url))
    first.settle(before.id, "paid")
    first.stop()

    with (
        on(state, port_of(first)) as again,
        connected(merchant.settings) as provider,
    ):
        after = provider.create(payment_request(notification_url=receiver.url))
        again.settle(after.id, "cancel")
        earlier = provider.status(payment_id=before.id)

        assert again.merchant(state / "payment").settings == merchant.settings
        assert earlier.status is PaymentStatus.PAID
        assert int(after.id) > int(before.id)
    notifications = [provider.parse_notification(url) for url in receiver.wait_for(2)]
    assert [n.payment.status for n in notifications] == [
        PaymentStatus.PAID,
        PaymentStatus.CANCELED,
    ]


def test_a_restarted_sandbox_signs_with_the_notification_key_the_shop_already_has(
    state: Path, first: Sandbox
) -> None:
    key_before = first.notification_public_key_pem()
    first.stop()

    with on(state) as again:
        assert again.notification_public_key_pem() == key_before
        assert again.notification_certificate.path == state / "notification"


def test_an_account_registered_before_a_restart_is_still_known(
    state: Path, first: Sandbox, tmp_path: Path
) -> None:
    merchant = first.create_merchant(tmp_path / "elsewhere", allowed=False)
    first.stop()

    public_pem = merchant.payment_certificate.public_key.read_bytes()
    with on(state) as again, connected({**merchant.settings, "base_url": again.url}) as provider:
        with pytest.raises(paymux.NotAllowed):
            provider.create(payment_request())

        assert again.account_of(public_pem) == merchant.account
        assert again.merchant(tmp_path / "elsewhere").account == merchant.account


def test_payment_ids_after_a_restart_stay_above_every_stored_one(
    state: Path, first: Sandbox
) -> None:
    merchant = first.merchant(state / "payment")
    with connected(merchant.settings) as provider:
        provider.create(payment_request())
    first.stop()
    saved = json.loads((state / STATE_FILE).read_text())
    far_ahead = 10**12  # as if the clock of the earlier run was ahead by years
    saved["payments"][0]["id"] = far_ahead
    (state / STATE_FILE).write_text(json.dumps(saved))

    with (
        on(state) as again,
        connected({**merchant.settings, "base_url": again.url}) as provider,
    ):
        created = provider.create(payment_request())

        assert int(created.id) == far_ahead + 1
        assert str(again.payment(far_ahead).url).startswith(f"{again.url}/pay/")


def test_the_state_files_and_private_keys_are_readable_by_their_owner_only(
    state: Path, first: Sandbox
) -> None:
    merchant = first.merchant(state / "payment")
    with connected(merchant.settings) as provider:
        provider.create(payment_request())

    private = [
        state / STATE_FILE,
        state / "notification" / "private.pem",
        state / "notification" / "password.txt",
        state / "payment" / "private.pem",
        state / "payment" / "password.txt",
    ]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in private} == {
        path.name: 0o600 for path in private
    }
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert sorted(path.name for path in state.iterdir()) == [
        "notification",
        "payment",
        STATE_FILE,
    ], "no temporary file is left behind"


def test_every_change_is_saved_at_once(state: Path, first: Sandbox) -> None:
    merchant = first.merchant(state / "payment")
    with connected(merchant.settings) as provider:
        payment = provider.create(payment_request())
    first.settle(payment.id, "paid", paid_amount="200.00")

    saved = json.loads((state / STATE_FILE).read_text())

    assert [account["account"] for account in saved["accounts"]] == [merchant.account]
    assert [(p["id"], p["status"]) for p in saved["payments"]] == [(int(payment.id), "paid")]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{not json", id="not JSON"),
        pytest.param('{"accounts": [], "payments": [{"id": 1}]}', id="a payment cut short"),
        pytest.param('{"accounts": [{"who": "me"}], "payments": []}', id="an unknown account"),
        pytest.param('{"accounts": [], "payments": {"$decimal": "x"}}', id="a broken decimal"),
        pytest.param(
            '{"accounts": [{"account": "a", "public_key_pem": "no key"}], "payments": []}',
            id="an account without a key",
        ),
    ],
)
def test_a_damaged_state_file_is_a_configuration_error_naming_the_file(
    state: Path, text: str
) -> None:
    state.mkdir()
    (state / STATE_FILE).write_text(text)

    with pytest.raises(paymux.ConfigurationError, match="cannot read the sandbox state in"):
        Sandbox(state_dir=state)


def test_a_sandbox_without_a_state_folder_starts_empty_every_time(
    tmp_path: Path,
) -> None:
    with Sandbox() as one:
        merchant = one.create_merchant(tmp_path / "payment")

    with Sandbox() as two:
        assert two.account_of(merchant.payment_certificate.public_key.read_bytes()) is None
        assert two.payments() == []
