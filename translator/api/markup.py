"""LibreTranslate's `format=html`: the text of an HTML fragment is translated, its markup kept.

A document is one bounded unit of work (docs/SECURITY.md): BeautifulSoup (html.parser) finds
the text nodes in one walk down the tree (the text of `<script>`, `<style>`, `<code>`, `<pre>`,
`<textarea>`, `<template>` and comments is left alone), their texts are joined one per line into
one text, which travels as a few requests of at most MAX_TEXT_LENGTH characters each (files.py's
blocks: a node is never split but at its own line breaks or, when longer than a block, its
spaces), and the translation is split back at the same line breaks, each node keeping its
surrounding whitespace. The worker's text plan keeps line breaks as they are; a translation that
comes back with another number of lines is an error, never a misplaced text.

Parsing and rebuilding are CPU work, and a parsed tree is tens of thousands of objects: the API
runs `text_of` and `rebuild_html` (strings in, strings out) in a worker process of its own
(`anyio.to_process`), so that neither the parsing nor the garbage collector's passes over a tree
hold the event loop (health, pongs, other requests)."""

from __future__ import annotations

from dataclasses import dataclass

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString, PageElement

from translator.api.errors import ApiError

_UNTOUCHED = {"script", "style", "code", "pre", "textarea", "template"}


@dataclass
class Document:
    soup: BeautifulSoup
    nodes: list[NavigableString]  # the text nodes to translate, in document order

    @property
    def text(self) -> str:
        """Each node's text without its surrounding whitespace, one node per line."""
        return "\n".join(str(node).strip() for node in self.nodes)


def parse(html: str) -> Document:
    """The document and its translatable text nodes, found in one walk (linear in its size,
    however deep its nesting)."""
    soup = BeautifulSoup(html, "html.parser")
    nodes: list[NavigableString] = []
    stack: list[tuple[PageElement, bool]] = [(soup, False)]
    while stack:
        element, untouched = stack.pop()
        if isinstance(element, Tag):
            inside = untouched or element.name in _UNTOUCHED
            stack.extend((child, inside) for child in reversed(element.contents))
        elif type(element) is NavigableString and not untouched and element.strip():
            nodes.append(element)  # not a Comment, CData, doctype or declaration
    return Document(soup, nodes)


def text_of(html: str) -> str:
    """The text to translate of `html`: its text nodes, one per line."""
    return parse(html).text


def rebuild_html(html: str, translated: str) -> str:
    """`html` with its text nodes' translations (`translated`: the translation of
    `text_of(html)`), parsed again (a worker process keeps no tree between calls)."""
    return rebuild(parse(html), translated)


def rebuild(document: Document, translated: str) -> str:
    """The document with each node's text replaced by its translation (`translated`: the
    translation of `document.text`), its surrounding whitespace kept."""
    lines = translated.split("\n")
    wanted = document.text.count("\n") + 1
    if len(lines) != wanted:
        raise ApiError(
            500, f"the translation has {len(lines)} lines where the document's text has {wanted}"
        )
    at = 0
    for node in document.nodes:
        text = str(node)
        count = text.strip().count("\n") + 1
        lead, tail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
        node.replace_with(NavigableString(lead + "\n".join(lines[at : at + count]) + tail))
        at += count
    return str(document.soup)
