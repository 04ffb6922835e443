"""Read HTML forms the way a browser submits them, with nothing but the standard library.

A customer without a browser (the demo, the tests) uses it to "click" a button on the sandbox's
payment page, and to follow the page that sends the customer back to the shop:

    forms = read_forms(page.text, page.url)
    form = button_form(forms, "Pay")
    session.post(form.action, data=form.submission("Pay"))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin


@dataclass(frozen=True)
class Button:
    """A submit button: its visible text, and the name=value it adds to the submission."""

    text: str
    name: str | None = None
    value: str = ""


@dataclass(frozen=True)
class Form:
    """One `<form>`: where it goes, its named inputs (in order) and its submit buttons."""

    action: str
    method: str
    inputs: tuple[tuple[str, str], ...] = ()
    buttons: tuple[Button, ...] = ()
    id: str | None = None

    def button(self, text: str) -> Button:
        for button in self.buttons:
            if button.text == text:
                return button
        raise LookupError(f"the form has no button {text!r}")

    def submission(self, button: str | None = None, **typed: str) -> dict[str, str]:
        """What a browser posts when `button` (its text) is clicked after typing `typed` values.

        Without `button` it is the form as submitted by a script (`form.submit()`), which adds
        no button value.
        """
        fields = dict(self.inputs)
        unknown = set(typed) - set(fields)
        if unknown:
            raise LookupError(f"the form has no input {', '.join(sorted(unknown))}")
        fields.update(typed)
        if button is not None:
            clicked = self.button(button)
            if clicked.name:
                fields[clicked.name] = clicked.value
        return fields


def read_forms(text: str, base_url: str) -> list[Form]:
    """Every form in `text`, actions resolved against `base_url` (the page's own address)."""
    reader = _FormReader(base_url)
    reader.feed(text)
    reader.close()
    return reader.forms


def button_form(forms: list[Form], text: str) -> Form:
    """The form holding the submit button whose visible text is `text`."""
    for form in forms:
        if any(button.text == text for button in form.buttons):
            return form
    raise LookupError(f"no form has a button {text!r}")


@dataclass
class _OpenForm:
    action: str
    method: str
    id: str | None
    inputs: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)


class _FormReader(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.forms: list[Form] = []
        self._form: _OpenForm | None = None
        self._button: dict[str, str | None] | None = None
        self._button_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._form = _OpenForm(
                action=urljoin(self.base_url, values.get("action") or ""),
                method=(values.get("method") or "get").upper(),
                id=values.get("id"),
            )
        elif self._form is None:
            return
        elif tag == "input":
            kind = (values.get("type") or "text").lower()
            name = values.get("name")
            if kind == "submit":
                value = values.get("value") or ""
                self._form.buttons.append(Button(value or "Submit", name, value))
            elif name and kind not in ("button", "reset", "image", "file"):
                self._form.inputs.append((name, values.get("value") or ""))
        elif tag == "button" and (values.get("type") or "submit").lower() == "submit":
            self._button = values
            self._button_text = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self._form is not None:
            text = " ".join("".join(self._button_text).split())
            name = self._button.get("name")
            self._form.buttons.append(Button(text, name, self._button.get("value") or ""))
            self._button = None
        elif tag == "form" and self._form is not None:
            opened = self._form
            self.forms.append(
                Form(
                    opened.action,
                    opened.method,
                    tuple(opened.inputs),
                    tuple(opened.buttons),
                    opened.id,
                )
            )
            self._form = None
