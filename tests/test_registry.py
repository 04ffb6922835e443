"""Finding providers through entry points, and the hooks host applications observe.

Plugin discovery depends on what is installed in the interpreter, so the tests that need a
particular installation (nothing imported yet, a broken plugin next to AliKassa) run in a fresh
Python process; the plugin is really installed with pip into a folder on its PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import Exchange, Payment, PaymentStatus, Provider
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import Receiver, payment_request


def run_python(
    script: str, *args: str, pythonpath: Path | None = None, block: str | None = None
) -> Any:
    """Run `script` in a fresh interpreter; it prints one JSON document, returned parsed.

    `block` is given to it as PAYMUX_BLOCK_PLUGINS.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAYMUX")}
    if block is not None:
        env["PAYMUX_BLOCK_PLUGINS"] = block
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def canonical(name: str | None) -> str | None:
    """A distribution name as packaging compares them (PEP 503)."""
    return None if name is None else name.replace("_", "-").replace(".", "-").lower()


# -- listing and selecting providers ---------------------------------------------------------


def test_listing_providers_reads_metadata_without_importing_any_plugin() -> None:
    found = run_python(
        """
        import dataclasses, json, sys
        import paymux

        registry = paymux.default_registry()
        installed = [dataclasses.asdict(info) for info in registry.installed()]
        imported_after_listing = "paymux.providers.alikassa" in sys.modules
        registry.provider_class("alikassa")
        imported_after_asking = "paymux.providers.alikassa" in sys.modules
        print(json.dumps({
            "installed": installed,
            "imported_after_listing": imported_after_listing,
            "imported_after_asking": imported_after_asking,
        }))
        """
    )

    assert {
        "name": "alikassa",
        "module": "paymux.providers.alikassa",
        "distribution": "paymux",
        "version": paymux.__version__,
        "blocked": False,
    } in found["installed"]
    assert found["imported_after_listing"] is False
    assert found["imported_after_asking"] is True


def test_a_plugin_named_in_paymux_block_plugins_is_listed_as_blocked_and_never_loaded() -> None:
    found = run_python(
        """
        import json, sys
        import paymux

        registry = paymux.default_registry()
        blocked = {info.name: info.blocked for info in registry.installed()}
        try:
            registry.provider_class("alikassa")
            refused = None
        except paymux.ProviderNotFound as error:
            refused = str(error)
        print(json.dumps({
            "blocked": blocked,
            "refused": refused,
            "problems": {name: str(p) for name, p in registry.load_all().items() if p},
            "imported": "paymux.providers.alikassa" in sys.modules,
        }))
        """,
        block=" alikassa , nothing-such",
    )

    assert found["blocked"]["alikassa"] is True
    assert not any(blocked for name, blocked in found["blocked"].items() if name != "alikassa")
    assert "blocked by PAYMUX_BLOCK_PLUGINS" in found["refused"]
    assert found["problems"] == {}
    assert found["imported"] is False


def test_a_provider_reports_to_the_registry_that_connected_it_and_no_other(
    merchant: Merchant,
) -> None:
    own, default = Observer(), Observer()
    registry = paymux.Registry()
    registry.register(own)
    paymux.register_plugin(default)
    try:
        instance = paymux.InstanceConfig.from_mapping("shop", merchant.settings)
        with registry.connect(instance) as provider:
            provider.create(payment_request())
    finally:
        paymux.unregister_plugin(default)

    assert [(e.operation, e.http_status) for e in own.exchanges] == [("create", 200)]
    assert [source for _, source in own.updates] == ["create"]
    assert default.exchanges == []
    assert default.updates == []


def test_connect_selects_alikassa_by_its_provider_name(merchant: Merchant) -> None:
    with paymux.connect(merchant.settings) as provider:
        assert isinstance(provider, AliKassaProvider)
        assert provider.name == "alikassa"
        assert provider.instance == "default"
        assert provider.account == merchant.account


def test_connect_takes_the_instance_name_from_the_settings(merchant: Merchant) -> None:
    with paymux.connect({**merchant.settings, "name": "eu-shop"}) as provider:
        assert provider.instance == "eu-shop"


def test_an_unknown_provider_name_is_reported_with_what_is_installed(merchant: Merchant) -> None:
    with pytest.raises(paymux.ProviderNotFound, match=r"'paypal'.*installed: .*alikassa"):
        paymux.connect({**merchant.settings, "provider": "paypal"})


def test_a_missing_provider_name_is_a_configuration_error(merchant: Merchant) -> None:
    settings = {key: value for key, value in merchant.settings.items() if key != "provider"}

    with pytest.raises(paymux.ConfigurationError, match="'provider'"):
        paymux.connect(settings)


def test_every_installed_plugin_loads_in_this_environment() -> None:
    problems = paymux.default_registry().load_all()

    assert problems["alikassa"] is None
    assert problems == dict.fromkeys(problems)


# -- a broken plugin, really installed -------------------------------------------------------

BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=70"]
build-backend = "setuptools.build_meta"

[project]
name = "paymux-broken-plugin"
version = "0.3.1"

[project.entry-points.paymux]
broken = "paymux_broken"

[tool.setuptools]
py-modules = ["paymux_broken"]
"""

BROKEN_MODULE = """\
import builtins

builtins.paymux_broken_import_attempts = getattr(builtins, "paymux_broken_import_attempts", 0) + 1
raise ImportError("paymux_broken needs a gateway SDK that is not installed")
"""


@pytest.fixture(scope="module")
def broken_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where pip installed a distribution whose `paymux` plugin fails to import."""
    root = tmp_path_factory.mktemp("broken-plugin")
    source = root / "source"
    source.mkdir()
    (source / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (source / "paymux_broken.py").write_text(BROKEN_MODULE)
    site = root / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    return site


BROKEN_SCRIPT = """
    import builtins, json, sys
    from decimal import Decimal
    import paymux

    def attempts():
        return getattr(builtins, "paymux_broken_import_attempts", 0)

    settings, order_id = json.loads(sys.argv[1]), sys.argv[2]
    registry = paymux.default_registry()
    installed = {info.name: info.distribution for info in registry.installed()}

    with paymux.connect(settings) as provider:
        created = provider.create(paymux.PaymentRequest(
            order_id=order_id,
            amount=Decimal("500.00"),
            customer=paymux.Customer(ip="18.191.80.10", user_agent="Mozilla/5.0"),
            options={"service": "payment_card_rub_hpp"},
        ))
    attempts_before_load_all = attempts()

    problems = registry.load_all()
    broken = problems["broken"]
    attempts_after_load_all = attempts()

    with paymux.connect(settings) as provider:
        status_after_load_all = provider.status(order_id=order_id).status.value

    print(json.dumps({
        "installed": installed,
        "created_status": created.status.value,
        "attempts_before_load_all": attempts_before_load_all,
        "alikassa_problem": None if problems["alikassa"] is None else str(problems["alikassa"]),
        "broken_type": type(broken).__name__,
        "broken_plugin": broken.plugin,
        "broken_distribution": broken.distribution,
        "broken_message": str(broken),
        "broken_cause": repr(broken.__cause__),
        "attempts_after_load_all": attempts_after_load_all,
        "status_after_load_all": status_after_load_all,
    }))
"""


@pytest.fixture(scope="module")
def with_broken_plugin(
    broken_plugin_site: Path,
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """What a fresh process with the broken plugin installed saw (see BROKEN_SCRIPT)."""
    order_id = payment_request().order_id
    with Sandbox(notification_certificate=notification_certificate.path) as sandbox:
        merchant = sandbox.create_merchant(
            tmp_path_factory.mktemp("merchant") / "payment", private_key=payment_key
        )
        seen: dict[str, Any] = run_python(
            BROKEN_SCRIPT, json.dumps(merchant.settings), order_id, pythonpath=broken_plugin_site
        )
        assert sandbox.payment(order_id).account == merchant.account
    return seen


def test_a_broken_plugin_is_listed_next_to_alikassa(with_broken_plugin: dict[str, Any]) -> None:
    installed = with_broken_plugin["installed"]

    assert {"alikassa", "broken"} <= set(installed)
    assert canonical(installed["broken"]) == "paymux-broken-plugin"


def test_a_broken_plugin_is_reported_by_name_and_distribution(
    with_broken_plugin: dict[str, Any],
) -> None:
    seen = with_broken_plugin

    assert seen["broken_type"] == "PluginLoadError"
    assert seen["broken_plugin"] == "broken"
    assert canonical(seen["broken_distribution"]) == "paymux-broken-plugin"
    assert "'broken'" in seen["broken_message"]
    assert seen["broken_distribution"] in seen["broken_message"]
    assert "gateway SDK that is not installed" in seen["broken_message"]
    assert seen["broken_cause"].startswith("ImportError(")


def test_a_broken_plugin_does_not_break_alikassa(with_broken_plugin: dict[str, Any]) -> None:
    seen = with_broken_plugin

    assert seen["created_status"] == "pending"
    assert seen["alikassa_problem"] is None
    assert seen["status_after_load_all"] == "pending"


def test_connecting_to_alikassa_never_imports_another_plugin(
    with_broken_plugin: dict[str, Any],
) -> None:
    assert with_broken_plugin["attempts_before_load_all"] == 0
    assert with_broken_plugin["attempts_after_load_all"] == 1


# -- hooks for host applications -------------------------------------------------------------


class Observer:
    """A host application's plugin: records exchanges and payment updates."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.updates: list[tuple[Payment, str]] = []

    @paymux.hookimpl
    def paymux_exchange(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    @paymux.hookimpl
    def paymux_payment_update(self, payment: Payment, source: str) -> None:
        self.updates.append((payment, source))


@pytest.fixture
def observer() -> Iterator[Observer]:
    registered = Observer()
    paymux.register_plugin(registered)
    yield registered
    paymux.unregister_plugin(registered)


def test_an_observer_sees_one_exchange_per_http_call(
    observer: Observer, provider: Provider, sandbox: Sandbox, receiver: Receiver
) -> None:
    created = provider.create(payment_request(notification_url=receiver.url))
    sandbox.settle(created.id, "paid")
    assert receiver.wait_for(1)
    provider.parse_notification(receiver.received[0])
    provider.status(payment_id=created.id)
    with pytest.raises(paymux.PaymentNotFound):
        provider.status(order_id="order-that-never-was")

    assert [(e.operation, e.http_status) for e in observer.exchanges] == [
        ("create", 200),
        ("status", 200),
        ("status", 404),
    ]
    assert [e.request_id for e in observer.exchanges] == [
        request.headers["x-request-id"] for request in sandbox.requests
    ]
    assert {(e.provider, e.method, e.outcome) for e in observer.exchanges} == {
        ("alikassa", "POST", "answered")
    }


def test_an_observer_sees_each_payment_update_with_its_source(
    observer: Observer, provider: Provider, sandbox: Sandbox, receiver: Receiver
) -> None:
    created = provider.create(payment_request(notification_url=receiver.url))
    sandbox.settle(created.id, "paid")
    assert receiver.wait_for(1)
    provider.parse_notification(receiver.received[0])
    provider.status(payment_id=created.id)

    assert [(p.id, p.status, source) for p, source in observer.updates] == [
        (created.id, PaymentStatus.PENDING, "create"),
        (created.id, PaymentStatus.PAID, "notification"),
        (created.id, PaymentStatus.PAID, "status"),
    ]


def test_an_unregistered_observer_sees_nothing_more(provider: Provider) -> None:
    observer = Observer()
    paymux.register_plugin(observer)
    paymux.unregister_plugin(observer)

    provider.create(payment_request())

    assert observer.exchanges == []
    assert observer.updates == []


class MisspeltHook:
    @paymux.hookimpl
    def paymux_payment_updated(self, payment: Payment, source: str) -> None:
        """`paymux_payment_update` with a typo: pluggy knows no such hook."""


class MisspeltArgument:
    @paymux.hookimpl
    def paymux_exchange(self, exchnage: Exchange) -> None:
        """A known hook, but paymux never passes `exchnage`."""


class RegistersANonProvider:
    @paymux.hookimpl
    def paymux_register_providers(self, register: Callable[[object], None]) -> None:
        register(dict)


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (MisspeltHook, "unknown hook 'paymux_payment_updated'"),
        (MisspeltArgument, "exchnage"),
        (RegistersANonProvider, "not a paymux Provider"),
    ],
    ids=["unknown hook", "unknown argument", "registers a non-provider"],
)
def test_a_plugin_that_does_not_fit_the_hookspecs_is_refused(
    plugin: type[object], reason: str
) -> None:
    candidate = plugin()

    with pytest.raises(paymux.PluginLoadError, match=reason):
        paymux.register_plugin(candidate, name="candidate")

    assert not paymux.default_registry().plugin_manager.is_registered(candidate)


def test_a_refused_plugin_does_not_keep_others_from_registering() -> None:
    with pytest.raises(paymux.PluginLoadError):
        paymux.register_plugin(MisspeltHook())
    observer = Observer()

    paymux.register_plugin(observer)
    try:
        assert paymux.default_registry().plugin_manager.is_registered(observer)
    finally:
        paymux.unregister_plugin(observer)


def test_connect_without_configuration_says_what_the_cli_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A newcomer meets this first, from Python or from the shell: one message, word for word."""
    for name in [key for key in os.environ if key.startswith("PAYMUX")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(paymux.ConfigurationError) as raised:
        paymux.connect()
    cli = subprocess.run(
        [sys.executable, "-m", "paymux.cli", "status", "--order-id", "1001"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert cli.returncode == 1
    assert cli.stderr == f"paymux: ConfigurationError: {raised.value}\n"
    assert "PAYMUX_CONFIG" in str(raised.value)
