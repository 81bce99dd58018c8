"""HTML pages: the main text (the longest `<article>`, else `<main>`, else the body) with
scripts, styles and navigation dropped, one block per innermost paragraph-like element, and a
title from `<title>`, `og:title` or the first `<h1>`. Elements are counted before BeautifulSoup
builds its tree, so a page of millions of tiny elements is refused quickly. Run in the parsing
worker (`index.parsing`).
"""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, Tag
from lxml import etree

from core.documents import Document
from index.loaders.common import _CHUNK, _check_chars, _count_elements, _ElementCounter

# Caps on what one HTML file may cost to parse (the others are in `index.loaders.common`).
MAX_HTML_ELEMENTS = 200_000

_DROPPED_HTML_TAGS = (
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template",
    "svg", "iframe", "button",
)
_HTML_BLOCKS = (
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "dt", "dd",
    "figcaption", "caption",
)


def html_document(doc_id: str, html: str) -> Document:
    """An HTML page: its main text (scripts, styles, navigation dropped), title from the page."""
    # Count the elements first, in C and without a tree: BeautifulSoup spends ~50 us on each,
    # so a page of millions of tiny ones would take minutes.
    _count_elements(etree.HTMLParser(target=_ElementCounter("the HTML", MAX_HTML_ELEMENTS)),
                    (html[i:i + _CHUNK] for i in range(0, len(html), _CHUNK)))
    soup = BeautifulSoup(html, "lxml")
    if soup.find() is None:
        raise ValueError("broken HTML: no elements found")
    title = _html_title(soup)
    for tag in soup.find_all(_DROPPED_HTML_TAGS):
        tag.decompose()
    root = _html_main(soup)
    blocks = []
    for element in root.find_all(_HTML_BLOCKS):
        # Only the innermost block elements, so nested lists are not repeated.
        if element.find(_HTML_BLOCKS):
            continue
        block = " ".join(element.get_text(" ", strip=True).split())
        if block:
            blocks.append(block)
    if not blocks:
        loose = " ".join(root.get_text(" ", strip=True).split())
        if loose:
            blocks.append(loose)
    text = "\n\n".join(blocks)
    _check_chars(len(text))
    if not text.strip():
        raise ValueError("broken or empty HTML: no readable text found")
    return Document(id=doc_id, text=text, title=title or Path(doc_id).stem)


def _html_title(soup: BeautifulSoup) -> str:
    """`<title>`, else `og:title`, else the first `<h1>`."""
    title_tag = soup.find("title")
    if title_tag and (title := title_tag.get_text(" ", strip=True)):
        return title
    og = soup.find("meta", attrs={"property": "og:title"})
    og_title = " ".join(str(og.get("content") or "").split()) if isinstance(og, Tag) else ""
    if og_title:
        return og_title
    h1 = soup.find("h1")
    return h1.get_text(" ", strip=True) if h1 else ""


def _html_main(soup: BeautifulSoup) -> Tag | BeautifulSoup:
    """The main content: the longest `<article>`, else `<main>`, else the body.

    The longest article, because listing pages and comment threads hold many small ones.
    Containers left empty once navigation and scripts are dropped do not count.
    """
    articles = [a for a in soup.find_all("article") if a.get_text(strip=True)]
    if articles:
        return max(articles, key=lambda a: len(a.get_text(" ", strip=True)))
    main = soup.find("main")
    if isinstance(main, Tag) and main.get_text(strip=True):
        return main
    return soup.body or soup
