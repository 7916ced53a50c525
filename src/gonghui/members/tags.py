"""Member tags (the union's labels for a person, which activities may require): what a
valid set of tags is. Pure, so that roster import workers use the same rule as the API."""

from __future__ import annotations

import re

from gonghui.errors import InvalidInput, field_error
from gonghui.members.errors import MembersError

TAG_MAX = 32
TAGS_MAX = 20
# How tags are written in one text cell or field: "劳模；一线职工", "a, b".
_SEPARATORS = re.compile(r"[;；,，、]")


def normalise_tags(raw: list[str]) -> list[str]:
    """Tags as stored: trimmed, without blanks or repeats, in the order given."""
    tags: list[str] = []
    for value in raw:
        tag = value.strip()
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX or any(len(t) > TAG_MAX or not t.isprintable() for t in tags):
        raise InvalidInput(
            MembersError.INVALID_TAGS,
            f"at most {TAGS_MAX} tags of at most {TAG_MAX} printable characters",
            [field_error("tags", MembersError.INVALID_TAGS, "too many or too long")],
        )
    return tags


def parse_tags(text: str) -> list[str]:
    """Tags written in one piece of text, separated by ``;`` ``；`` ``,`` ``，`` or ``、``."""
    return normalise_tags(_SEPARATORS.split(text))
