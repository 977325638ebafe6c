"""Reading a rendered page back: every start tag with its attributes, and the text of elements
by id, with the standard library's HTML parser (what a browser's DOM would hold)."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._raw: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("style", "script", "title"):
            self._open.append(tag)
            self._raw.setdefault(tag, [])

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self._raw[self._open[-1]].append(data)
        self.text.append(data)

    def raw(self, tag: str) -> str:
        return "".join(self._raw.get(tag, []))

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def with_attr(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and name in a]
