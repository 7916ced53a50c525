"""The article body's HTML, sanitised on every save with nh3 (the Ammonia sanitiser): an
allow-list of tags and attributes, links only to http(s) and mailto, and images only from
this platform's own news images (``/api/v1/news/images/<random name>``). Whatever else an
editor pastes (scripts, event handlers, ``javascript:`` URLs, styles, frames) is dropped."""

from __future__ import annotations

import re

import nh3

TAGS = frozenset(
    {
        "p", "br", "hr", "h2", "h3", "h4", "strong", "b", "em", "i", "u", "s", "sub", "sup",
        "blockquote", "ul", "ol", "li", "a", "img", "figure", "figcaption", "span",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# The only images an article shows: those uploaded to the news image store (files.py).
IMAGE_SRC = re.compile(r"/api/v1/news/images/[0-9a-f]{32}\.(?:jpg|png|webp)")
_SIZE = re.compile(r"[0-9]{1,4}")


def _attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "img" and name == "src":
        return value if IMAGE_SRC.fullmatch(value) else None
    if tag == "img" and name in ("width", "height"):
        return value if _SIZE.fullmatch(value) else None
    if tag == "a" and name == "href" and value.startswith("//"):
        return None  # a scheme-relative link leaves the site with whatever scheme
    return value


def sanitise(html: str) -> str:
    """``html`` with only what :data:`TAGS` and :data:`ATTRIBUTES` allow; links get
    ``rel="noopener noreferrer nofollow"``."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        attribute_filter=_attribute,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()


def text_of(html: str) -> str:
    """The article's words without tags (to tell an empty body, and for summaries)."""
    return " ".join(nh3.clean(html, tags=set()).split())
