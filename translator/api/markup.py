"""LibreTranslate's `format=html`: the text of an HTML fragment is translated, its markup kept.
BeautifulSoup (html.parser) finds the text nodes; the text of `<script>`, `<style>`, `<code>`,
`<pre>` and comments is left alone; each node keeps its surrounding whitespace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bs4 import BeautifulSoup
from bs4.element import Comment, NavigableString

from translator.api import together

_UNTOUCHED = {"script", "style", "code", "pre", "textarea", "template"}


def text_nodes(soup: BeautifulSoup) -> list[NavigableString]:
    nodes = []
    for node in soup.find_all(string=True):
        if isinstance(node, Comment) or not node.strip():
            continue
        if any(parent.name in _UNTOUCHED for parent in node.parents):
            continue
        if type(node) is not NavigableString:  # CData, doctype, declarations
            continue
        nodes.append(node)
    return nodes


async def translate_html(html: str, translate: Callable[[str], Awaitable[str]]) -> str:
    """`html` with each text node replaced by `translate(node)`, all nodes at once; the first
    failure is raised once every node is done."""
    soup = BeautifulSoup(html, "html.parser")
    nodes = text_nodes(soup)
    done: list[str] = [""] * len(nodes)

    async def one(index: int, node: NavigableString) -> None:
        text = str(node)
        lead, tail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
        done[index] = lead + await translate(text.strip()) + tail

    await together.each(nodes, one)
    for node, text in zip(nodes, done, strict=True):
        node.replace_with(NavigableString(text))
    return str(soup)
