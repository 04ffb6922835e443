"""YooKassa, a gateway as its own distribution: yookassa/ pip-installed next to paymux, found
through its entry point, configured by its settings, importing only the author API.

conftest.py pip-installs it from yookassa/ before the tests are collected, and gives the
YooKassa fixtures (`webhooks`, `emulator`, `yookassa`); yookassa_support.py the helpers of every
test_yookassa_* module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import paymux
from distributions import YOOKASSA, is_current

if TYPE_CHECKING:
    pass

# -- the distribution ---------------------------------------------------------------------------


def test_the_registry_finds_yookassa_through_its_entry_point() -> None:
    installed = {info.name: info for info in paymux.default_registry().installed()}

    assert installed["yookassa"].module == "paymux_yookassa"
    assert installed["yookassa"].distribution is not None
    assert installed["yookassa"].distribution.replace("_", "-").lower() == "paymux-yookassa"
    assert installed["yookassa"].version == "0.1.0"
    assert paymux.default_registry().provider_class("yookassa").name == "yookassa"


def test_it_is_installed_with_pip_from_this_repositorys_yookassa_folder() -> None:
    """Like any third party's distribution: not a module of paymux's own."""
    assert is_current(*YOOKASSA[::2])
    assert "paymux.providers" not in paymux.default_registry().provider_class("yookassa").__module__


def test_the_provider_declares_what_yookassa_offers() -> None:
    offered = paymux.default_registry().provider_class("yookassa").capabilities

    assert offered.operations == {
        paymux.Operation.CREATE,
        paymux.Operation.STATUS,
        paymux.Operation.REFUND,
        paymux.Operation.REFUND_STATUS,
        paymux.Operation.CAPTURE,
        paymux.Operation.CANCEL,
    }
    assert offered.status_by == {paymux.Lookup.PAYMENT_ID}
    assert offered.notifications == {paymux.Authentication.SENDER, paymux.Authentication.REFETCH}


# -- settings ----------------------------------------------------------------------------------


def test_defaults_are_yookassa_itself_and_its_published_notification_addresses() -> None:
    with paymux.connect(
        {"provider": "yookassa", "shop_id": "123456", "secret_key": "test_abc"}
    ) as connected:
        assert connected.base_url == "https://api.yookassa.ru"
        assert connected.account == "123456"
        assert [str(network) for network in connected.allowed_senders()] == [
            "185.71.76.0/27",
            "185.71.77.0/27",
            "77.75.153.0/25",
            "77.75.156.11/32",
            "77.75.156.35/32",
            "77.75.154.128/25",
            "2a02:5180::/32",
        ]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"shop_id": None}, "shop_id"),
        ({"secret_key": None}, "secret_key"),
        ({"shop_id": "12:34"}, "shop_id"),
        ({"allowed_senders": ["185.71.76.5/27"]}, "allowed_senders"),
        ({"allowed_senders": []}, "allowed_senders"),
        ({"currency": "rub"}, "currency"),
        ({"return_url": "ftp://shop.example"}, "return_url"),
        ({"base_url": "http://api.yookassa.ru"}, "base_url"),
    ],
)
def test_bad_settings_are_refused_by_name_without_showing_the_secret(
    changes: dict[str, Any], named: str
) -> None:
    settings = {"provider": "yookassa", "shop_id": "123456", "secret_key": "test_s3cr3t-value"}
    settings.update(changes)

    with pytest.raises(paymux.ConfigurationError) as raised:
        paymux.connect({key: value for key, value in settings.items() if value is not None})

    assert named in str(raised.value)
    assert "s3cr3t" not in str(raised.value)
