"""`phpjson`: Python values written byte for byte as PHP's `json_encode` (default flags).

AliKassa signs PHP `json_encode` output, so every rule in PROTOCOL.md's "PHP json_encode" section
is pinned here by a golden string. The golden table is then checked against a real PHP, and so is
a set of tricky strings and mappings, and a few hundred random strings (hypothesis). Without a
`php` on PATH those cross-checks skip, loudly.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paymux.providers.alikassa import phpjson
from paymux.providers.alikassa.phpjson import PHPJSONError

DEL = "\x7f"

GOLDEN: list[tuple[str, Any, str]] = [
    # (case id, value, what PHP json_encode writes)
    ("no-spaces-object", {"a": 1, "b": "x"}, '{"a":1,"b":"x"}'),
    ("no-spaces-list", [1, "x", None], '[1,"x",null]'),
    ("keeps-key-order", {"z": 1, "a": 2, "m": 3}, '{"z":1,"a":2,"m":3}'),
    ("slash", "a/b", r'"a\/b"'),
    ("url", "https://shop.example/pay?id=1", r'"https:\/\/shop.example\/pay?id=1"'),
    ("latin-1", "é", r'"\u00e9"'),
    ("latin-1-top", "ÿ", r'"\u00ff"'),
    ("no-break-space", "\u00a0", r'"\u00a0"'),
    ("cyrillic", "Оплата", r'"\u041e\u043f\u043b\u0430\u0442\u0430"'),
    ("euro-lowercase-hex", "€", r'"\u20ac"'),
    ("bom", "\ufeff", r'"\ufeff"'),
    ("line-separators", "\u2028\u2029", r'"\u2028\u2029"'),
    ("last-bmp", "\uffff", r'"\uffff"'),
    ("emoji-surrogate-pair", "💳", r'"\ud83d\udcb3"'),
    ("last-code-point", "\U0010ffff", r'"\udbff\udfff"'),
    ("quote", '"', r'"\""'),
    ("backslash", "\\", r'"\\"'),
    ("short-escapes", "\b\f\n\r\t", r'"\b\f\n\r\t"'),
    ("nul", "\x00", r'"\u0000"'),
    ("soh", "\x01", r'"\u0001"'),
    ("vertical-tab", "\x0b", r'"\u000b"'),
    ("escape", "\x1b", r'"\u001b"'),
    ("unit-separator", "\x1f", r'"\u001f"'),
    ("space-is-raw", " ", '" "'),
    ("del-raw", DEL, f'"{DEL}"'),
    ("del-between-text", f"a{DEL}b", f'"a{DEL}b"'),
    ("del-next-to-slash-and-accent", f"/{DEL}é{DEL}/", rf'"\/{DEL}\u00e9{DEL}\/"'),
    ("html-characters-raw", "<a href='x'>&amp;</a>", "\"<a href='x'>&amp;<\\/a>\""),
    ("literal-backslash-u007f-text", "\\u007f", r'"\\u007f"'),
    ("literal-escape-text-next-to-del", f"\\u007f{DEL}", rf'"\\u007f{DEL}"'),
    ("del-next-to-literal-escape-text", f"{DEL}\\u007f{DEL}", rf'"{DEL}\\u007f{DEL}"'),
    ("zero", 0, "0"),
    ("negative", -17, "-17"),
    ("large-int", 2**62, "4611686018427387904"),
    ("true", True, "true"),
    ("false", False, "false"),
    ("null", None, "null"),
    ("empty-string", "", '""'),
    ("empty-mapping-is-array", {}, "[]"),
    ("empty-list", [], "[]"),
    ("escaped-key", {"a/b": "é", "\n": DEL}, rf'{{"a\/b":"\u00e9","\n":"{DEL}"}}'),
    (
        "nested",
        {"a": {"b": [{}, {"c": "/"}, [True, None]], "d": -1}, "e": "💳"},
        r'{"a":{"b":[[],{"c":"\/"},[true,null]],"d":-1},"e":"\ud83d\udcb3"}',
    ),
    (
        "notification",
        {
            "type": "payment",
            "id": 100000001,
            "order_id": "order/42",
            "payment_status": "paid",
            "amount": "500.000000000",
            "payment_amount": "500.000000000",
            "commission_amount": "15.000000000",
            "is_partial_payment": "0",
            "account": "9d6f1e0e-2a4b-4c1e-9a57-3c1f7f5e2b10",
            "service": "payment_card_rub_hpp",
            "desc": 'Заказ №42 <b>"gift"</b>',
        },
        r'{"type":"payment","id":100000001,"order_id":"order\/42","payment_status":"paid",'
        r'"amount":"500.000000000","payment_amount":"500.000000000",'
        r'"commission_amount":"15.000000000","is_partial_payment":"0",'
        r'"account":"9d6f1e0e-2a4b-4c1e-9a57-3c1f7f5e2b10","service":"payment_card_rub_hpp",'
        r'"desc":"\u0417\u0430\u043a\u0430\u0437 \u211642 <b>\"gift\"<\/b>"}',
    ),
]

TRICKY_STRINGS = [
    "",
    "plain ascii",
    "</script><script>alert('x')</script>",
    "C:\\path\\to\\file",
    "\\/",
    "\\\\/",
    '\\"',
    "".join(chr(code) for code in range(0x20)),
    "".join(chr(code) for code in range(0x20, 0x80)),
    "".join(chr(code) for code in range(0x80, 0x100)),
    f"\\u007f{DEL}\\\\u007f{DEL}/",
    "Оплата заказа №42 — спасибо!",
    "支付订单",
    "e\u0301 (combining acute)",
    "\ud7ff\ue000\ufffd\ufffe\uffff",
    "\U00010000\U0001f600\U0001f4b3\U0010ffff",
    "👩‍👩‍👧 family with zero-width joiners",
    "\u2028line\u2029paragraph\u0085next",
]

TRICKY_VALUES: list[tuple[str, Any]] = [
    *((f"string-{index}", text) for index, text in enumerate(TRICKY_STRINGS)),
    ("all-strings-as-values", {f"k{index}": text for index, text in enumerate(TRICKY_STRINGS)}),
    ("strings-as-keys", {f"key:{text}": index for index, text in enumerate(TRICKY_STRINGS)}),
    ("list-of-all-strings", TRICKY_STRINGS),
    ("empty-mapping-inside", {"a": {}, "b": [{}, []], "c": {"d": {}}}),
    ("ints-and-constants", {"i": [0, 1, -1, 2**31, -(2**63), 2**63 - 1], "c": [True, False, None]}),
    ("deep", {"a": [{"b": [{"c": [{"d": "/é\x7f"}]}]}]}),
]

# PHP's json_decode of a JSON array (objects as associative arrays), then one json_encode per line.
PHP_ENCODE_EACH = r"""
$values = json_decode(file_get_contents('php://stdin'), true, 512, JSON_THROW_ON_ERROR);
foreach ($values as $value) {
    $line = json_encode($value);
    if ($line === false) {
        fwrite(STDERR, 'json_encode failed: ' . json_last_error_msg() . "\n");
        exit(2);
    }
    echo $line, "\n";
}
"""

PHP_ENCODE_RAW_BYTES = r"""
$line = json_encode(base64_decode($argv[1], true));
echo $line === false ? 'FAILED: ' . json_last_error_msg() : $line;
"""


@pytest.fixture(scope="module")
def php() -> str:
    """The `php` executable; the PHP cross-checks skip loudly without it."""
    executable = shutil.which("php")
    if executable is None:
        pytest.skip(
            "PHP CROSS-CHECK NOT RUN: no `php` on PATH, so phpjson was NOT compared with real "
            "PHP json_encode. Install php-cli (apt-get install php-cli) to run it."
        )
    return executable


def php_json_encode_each(php: str, values: Sequence[Any]) -> list[bytes]:
    """What PHP's `json_encode` writes for each value, from one PHP process."""
    document = json.dumps(list(values), ensure_ascii=False).encode("utf-8")
    result = subprocess.run(
        [php, "-r", PHP_ENCODE_EACH],
        input=document,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(f"php failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    lines = result.stdout.split(b"\n")
    assert lines[-1] == b"", "PHP output must end with a newline"
    assert len(lines) - 1 == len(values), result.stdout[:2000]
    return lines[:-1]


# -- golden strings: every rule of the PHP json_encode section -------------------------------


@pytest.mark.parametrize(("value", "expected"), [pytest.param(v, e, id=i) for i, v, e in GOLDEN])
def test_dumps_writes_the_golden_php_string(value: Any, expected: str) -> None:
    assert phpjson.dumps(value) == expected


@pytest.mark.parametrize(("value", "expected"), [pytest.param(v, e, id=i) for i, v, e in GOLDEN])
def test_dumps_bytes_is_the_golden_string_as_ascii(value: Any, expected: str) -> None:
    """The signed and sent bytes: pure ASCII, the same characters as `dumps`."""
    encoded = phpjson.dumps_bytes(value)
    assert isinstance(encoded, bytes)
    assert encoded == expected.encode("ascii")


def test_tuples_are_written_as_lists() -> None:
    assert phpjson.dumps(("a", 1, ("b",))) == '["a",1,["b"]]'


def test_output_has_no_separator_spaces_even_when_python_would_add_them() -> None:
    value = {"a": [1, 2], "b": {"c": None}}
    assert json.dumps(value) != phpjson.dumps(value)
    assert phpjson.dumps(value) == json.dumps(value, separators=(",", ":"))


# -- what PHP would refuse, or what must never be sent ---------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.0, id="whole-float"),
        pytest.param(0.5, id="fraction"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param(Decimal("10.00"), id="decimal"),
        pytest.param({"amount": 500.0}, id="float-in-mapping"),
        pytest.param(["500", 500.5], id="float-in-list"),
    ],
)
def test_floats_are_refused(value: Any) -> None:
    """Money travels as strings or integers; PHP would write 1.0 as 1 and change the bytes."""
    with pytest.raises(PHPJSONError, match="money as a string"):
        phpjson.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("\ud800", id="lone-high"),
        pytest.param("\udfff", id="lone-low"),
        pytest.param("card \ud83d", id="high-without-low"),
        pytest.param("\udcb3\ud83d", id="pair-in-wrong-order"),
        pytest.param({"desc": "ok\udc00"}, id="in-a-value"),
        pytest.param({"\ud800": "x"}, id="in-a-key"),
        pytest.param(["fine", ["\udbff"]], id="nested-in-a-list"),
    ],
)
def test_lone_surrogates_are_refused(value: Any) -> None:
    """They are not valid UTF-8: PHP's json_encode fails, so nothing may be signed."""
    with pytest.raises(PHPJSONError, match="UTF-8"):
        phpjson.dumps(value)
    with pytest.raises(PHPJSONError):
        phpjson.dumps_bytes(value)


def test_phpjson_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        phpjson.dumps("\ud800")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"abc", id="bytes"),
        pytest.param(bytearray(b"abc"), id="bytearray"),
        pytest.param({"a", "b"}, id="set"),
        pytest.param(object(), id="object"),
    ],
)
def test_values_php_has_no_form_for_are_refused(value: Any) -> None:
    """In particular bytes never turn into a list of small integers."""
    with pytest.raises(PHPJSONError, match="cannot encode"):
        phpjson.dumps(value)


def test_non_text_mapping_keys_are_refused() -> None:
    with pytest.raises(PHPJSONError, match="keys must be text"):
        phpjson.dumps({1: "a"})


# -- properties that need no PHP ---------------------------------------------------------------


@settings(max_examples=200, deadline=None, database=None)
@given(st.text())
def test_any_valid_text_round_trips_through_a_json_parser(text: str) -> None:
    encoded = phpjson.dumps(text)
    assert encoded.isascii()
    assert json.loads(encoded) == text


# -- the same bytes as a real PHP ------------------------------------------------------------


def test_golden_strings_are_what_real_php_writes(php: str) -> None:
    """The golden table above is PHP's own output, not a guess."""
    php_lines = php_json_encode_each(php, [value for _, value, _ in GOLDEN])
    differing = [
        (case, expected, line.decode("ascii", errors="replace"))
        for (case, _, expected), line in zip(GOLDEN, php_lines, strict=True)
        if line != expected.encode("ascii")
    ]
    assert differing == []


@pytest.fixture(scope="module")
def php_tricky(php: str) -> dict[str, bytes]:
    """PHP's json_encode of every tricky value, by case id, from one PHP process."""
    lines = php_json_encode_each(php, [value for _, value in TRICKY_VALUES])
    return {case: line for (case, _), line in zip(TRICKY_VALUES, lines, strict=True)}


@pytest.mark.parametrize(("case", "value"), [pytest.param(c, v, id=c) for c, v in TRICKY_VALUES])
def test_tricky_values_encode_to_the_same_bytes_as_php(
    php_tricky: dict[str, bytes], case: str, value: Any
) -> None:
    assert phpjson.dumps_bytes(value) == php_tricky[case]


@pytest.mark.parametrize(
    "text", [pytest.param("\ud800", id="high"), pytest.param("\udc00", id="low")]
)
def test_php_refuses_lone_surrogates_too(php: str, text: str) -> None:
    """PHP fails on the UTF-8-shaped bytes of a lone surrogate, as phpjson does on the text."""
    raw = text.encode("utf-8", "surrogatepass")
    result = subprocess.run(
        [php, "-r", PHP_ENCODE_RAW_BYTES, base64.b64encode(raw).decode("ascii")],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"FAILED: Malformed UTF-8"), result.stdout
    with pytest.raises(PHPJSONError):
        phpjson.dumps(text)


TRICKY_CHARACTERS = (
    "/\\\"'<>&\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f\x80\xa0\xff\u2028\ufeff\uffff"
)

random_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(TRICKY_CHARACTERS),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=40,
)


@settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(texts=st.lists(random_text, min_size=100, max_size=200))
def test_random_text_encodes_to_the_same_bytes_as_php(php: str, texts: list[str]) -> None:
    """Each example sends its whole batch of strings to one PHP process."""
    php_lines = php_json_encode_each(php, texts)
    differing = [
        (text, ours, theirs)
        for text, theirs in zip(texts, php_lines, strict=True)
        if (ours := phpjson.dumps_bytes(text)) != theirs
    ]
    assert differing == [], differing[:5]


field_name = random_text.map(lambda text: f"k{text}")
"""Never all digits: PHP would read keys "0", "1", ... as a list's and write `[...]` back."""
random_field_value = st.one_of(random_text, st.integers(-(2**40), 2**40), st.booleans(), st.none())


@settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    mappings=st.lists(
        st.dictionaries(field_name, random_field_value, min_size=1, max_size=12),
        min_size=50,
        max_size=100,
    )
)
def test_random_flat_mappings_encode_to_the_same_bytes_as_php(
    php: str, mappings: list[dict[str, Any]]
) -> None:
    """Request bodies and notifications are flat mappings: the shape `dumps` writes fastest."""
    php_lines = php_json_encode_each(php, mappings)
    differing = [
        (mapping, ours, theirs)
        for mapping, theirs in zip(mappings, php_lines, strict=True)
        if (ours := phpjson.dumps_bytes(mapping)) != theirs
    ]
    assert differing == [], differing[:5]
