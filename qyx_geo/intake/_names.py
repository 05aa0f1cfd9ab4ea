"""Names in registers: header recognition and matching of place names to official codes.

Private helpers of :mod:`qyx_geo.intake`. Headers and place names arrive in every variant a
spreadsheet allows (full-width characters, stray spaces, units in brackets, 村 / 村委会 /
村民委员会, 社区 / 居委会, a leading province/city/county name). Both are reduced to comparable
keys here;
nothing is guessed silently: a place name that matches no official unit, or several, comes
back with the closest candidates for the intake report.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = [
    "FIELDS",
    "PlaceMatch",
    "PlaceMatcher",
    "normalise_header",
    "normalise_text",
    "recognise_headers",
]

#: Canonical register fields and their recognised headers (after :func:`normalise_header`).
#: ``lonlat`` is a single "经度,纬度" column, as copied from map pickers.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "编号", "机构编码", "机构代码", "机构编号", "设施编号", "站点编号",
           "统一社会信用代码", "code", "fid", "uid"),
    "name": ("名称", "机构名称", "单位名称", "设施名称", "站点名称", "场所名称", "食堂名称",
             "机构", "name", "名字", "title"),
    "lon": ("经度", "东经", "lng", "lon", "long", "longitude", "x", "x坐标", "坐标x", "经度坐标"),
    "lat": ("纬度", "北纬", "lat", "latitude", "y", "y坐标", "坐标y", "纬度坐标"),
    "lonlat": ("经纬度", "坐标", "经纬度坐标", "lnglat", "lonlat", "location", "coordinates",
               ),
    "address": ("地址", "详细地址", "机构地址", "单位地址", "地点", "所在地址", "address", "addr"),
    "township": ("所属镇街", "镇街道", "镇街", "镇", "街道", "乡镇", "乡镇街道", "镇(街道)",
                 "所属镇(街道)", "所属乡镇", "所属街道", "所属镇", "所在镇街", "township", "town",
                 "street"),
    "village": ("所属村社", "村(社区)", "村社区", "村社", "村居", "所属村(社区)", "所属村居",
                "所属社区", "所属村", "所在村社", "村", "社区", "行政村", "village", "community"),
    "capacity": ("托位数", "床位数", "座位数", "餐位数", "托位", "床位", "座位", "餐位", "容量",
                 "规模", "capacity", "places", "seats", "beds"),
    "level": ("类型", "级别", "等级", "层级", "类别", "level", "type", "grade", "category"),
}
FIELDS: tuple[str, ...] = tuple(FIELD_ALIASES)

_ALIAS_TO_FIELD: dict[str, str] = {a: f for f, aliases in FIELD_ALIASES.items() for a in aliases}
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|<[^<>]*>")
_SPACE = re.compile(r"\s+")
_VILLAGE_SUFFIXES = ("社区居民委员会", "村民委员会", "社区居委会", "居民委员会", "村委会", "居委会",
                     "社区", "村")
_TOWNSHIP_SUFFIXES = ("街道办事处", "人民政府", "办事处", "街道", "镇", "乡")


def normalise_text(value: object) -> str:
    """Return ``value`` as text with full-width characters folded (NFKC) and spaces removed."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    return _SPACE.sub("", text)


def normalise_header(value: object) -> str:
    """Return the comparable key of a column header (lower case, no spaces, marks or units)."""
    text = normalise_text(value).lower().strip("*:：#")
    return text


def _header_keys(value: object) -> list[str]:
    key = normalise_header(value)
    keys = [key]
    stripped = _BRACKETS.sub("", key).strip("*:：#")
    if stripped and stripped != key:
        keys.append(stripped)
    return keys


def recognise_headers(headers: Iterable[object]) -> dict[str, str]:
    """Map canonical fields to the first header that names them (see :data:`FIELD_ALIASES`).

    Exact aliases win over aliases found after dropping a bracketed unit, e.g. ``托位数（个）``
    or ``经度(GCJ02)``. A field named by several headers takes the first.
    """
    found: dict[str, str] = {}
    for strict in (True, False):
        for header in headers:
            keys = _header_keys(header)
            for key in keys[:1] if strict else keys[1:]:
                field = _ALIAS_TO_FIELD.get(key)
                if field and field not in found and header not in found.values():
                    found[field] = str(header)
    return found


def count_known_headers(cells: Iterable[object]) -> int:
    """Return how many of ``cells`` are recognised headers (to find the header row)."""
    return sum(1 for c in cells if any(k in _ALIAS_TO_FIELD for k in _header_keys(c)))


def _kind_class(text: str) -> str | None:
    """Return ``"community"`` or ``"village"`` from a name's suffix, else ``None``."""
    if text.endswith(("社区", "居委会", "居民委员会")):
        return "community"
    if text.endswith(("村", "村委会", "村民委员会")):
        return "village"
    return None


def _strip_suffix(text: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if len(text) > len(suffix) and text.endswith(suffix):
            return text[: -len(suffix)]
    return text


@functools.cache
def default_prefixes() -> tuple[str, ...]:
    """Return the embedded region pack's province, prefecture and county names.

    Registers often start a place name with them (``浙江省宁波市…``); they are read from the
    pack's manifest, not written here, so that no county is named in the code.
    """
    from qyx_geo.region import read_region

    reg = read_region()
    return tuple(n for n in (reg.province_zh, reg.prefecture_zh, reg.name_zh) if n)


def place_keys(value: object, *, kind: Literal["village", "township"],
               prefixes: Iterable[str] | None = None) -> list[str]:
    """Return the comparison keys of a place name, most specific first.

    A leading name from ``prefixes`` (default: :func:`default_prefixes`) is dropped first, so
    with the embedded pack ``"浙江省 XX街道（办事处）"`` gives ``["XX街道", "XX"]``;
    ``"新浦村村委会"`` gives ``["新浦村村委会", "新浦村", "新浦"]``.
    """
    text = _BRACKETS.sub("", normalise_text(value))
    for prefix in default_prefixes() if prefixes is None else prefixes:
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix):]
    suffixes = _VILLAGE_SUFFIXES if kind == "village" else _TOWNSHIP_SUFFIXES
    keys: list[str] = []
    while text and text not in keys:
        keys.append(text)
        text = _strip_suffix(text, suffixes)
        if len(keys) == 3:
            break
    return keys


@dataclasses.dataclass(frozen=True)
class PlaceMatch:
    """Result of matching one place name.

    Attributes
    ----------
    status
        ``"exact"`` (official name or code), ``"variant"`` (same unit, another spelling),
        ``"ambiguous"`` (several units fit; ``candidates`` lists them), ``"unknown"`` (none fits;
        ``candidates`` lists the closest) or ``"empty"`` (no name given).
    code, name
        The official code and name when matched.
    candidates
        ``"名称 (代码)"`` strings for the report.
    """

    status: Literal["exact", "variant", "ambiguous", "unknown", "empty"]
    code: str | None = None
    name: str | None = None
    candidates: tuple[str, ...] = ()

    @property
    def matched(self) -> bool:
        """Whether a single official unit was found."""
        return self.code is not None


class PlaceMatcher:
    """Match village/community or township names to official codes, tolerating variants.

    Parameters
    ----------
    names
        Official code -> official name.
    kind
        ``"village"`` (村/社区 suffix rules) or ``"township"`` (镇/街道 suffix rules).
    parents
        For villages, code -> township code, used to break ties when a township is known.
    prefixes
        Province/prefecture/county names dropped from the start of a name (default: the
        embedded pack's, :func:`default_prefixes`); give the region's own for another county.
    """

    def __init__(self, names: Mapping[str, str], *, kind: Literal["village", "township"],
                 parents: Mapping[str, str] | None = None,
                 prefixes: Iterable[str] | None = None) -> None:
        self.kind = kind
        self.prefixes = tuple(default_prefixes() if prefixes is None else prefixes)
        self.names = {str(c): str(n) for c, n in names.items()}
        self.parents = {str(c): str(p) for c, p in (parents or {}).items()}
        self._index: dict[str, list[tuple[int, str]]] = {}
        self._by_core: dict[str, list[str]] = {}
        self._core: dict[str, str] = {}
        for code, name in self.names.items():
            keys = place_keys(name, kind=kind, prefixes=self.prefixes)
            self._core[code] = keys[-1] if keys else ""
            for rank, key in enumerate(keys):
                self._index.setdefault(key, []).append((rank, code))
            self._by_core.setdefault(keys[-1] if keys else name, []).append(code)

    def _label(self, code: str) -> str:
        return f"{self.names[code]} ({code})"

    def match(self, value: object, *, within: str | None = None) -> PlaceMatch:
        """Match one name (or official code); ``within`` is a township code that breaks ties."""
        text = normalise_text(value)
        if not text or text.lower() in {"nan", "none", "null", "-", "—", "/"}:
            return PlaceMatch("empty")
        if text in self.names:
            return PlaceMatch("exact", text, self.names[text])
        scores: dict[str, int] = {}
        for q_rank, key in enumerate(place_keys(text, kind=self.kind, prefixes=self.prefixes)):
            for o_rank, code in self._index.get(key, ()):
                score = q_rank + o_rank
                scores[code] = min(score, scores.get(code, score))
        if scores:
            best = min(scores.values())
            codes = sorted(c for c, s in scores.items() if s == best)
            if len(codes) > 1 and within is not None:
                inside = [c for c in codes if self.parents.get(c) == within]
                codes = inside or codes
            query_class = _kind_class(text) if self.kind == "village" else None
            if len(codes) > 1 and query_class is not None:
                same = [c for c in codes if _kind_class(self.names[c]) == query_class]
                codes = same or codes
            if len(codes) == 1:
                code = codes[0]
                status: Literal["exact", "variant"] = (
                    "exact" if normalise_text(self.names[code]) == text else "variant")
                return PlaceMatch(status, code, self.names[code])
            return PlaceMatch("ambiguous", candidates=tuple(self._label(c) for c in codes[:5]))
        return PlaceMatch("unknown", candidates=self.closest(text))

    def find_in(self, text: object, *, within: str | None = None) -> PlaceMatch:
        """Find the unit whose name appears inside ``text`` (an address), longest name first.

        Official names, and cores with a suffix of their own kind (``宁丰`` + 村/村委会 for a
        村委会, ``长河`` + 镇/街道), are searched as substrings; cores shorter than two characters
        are not. ``within`` (a township code) narrows several hits.
        """
        haystack = normalise_text(text)
        if not haystack:
            return PlaceMatch("empty")
        by_class = {"village": ("村", "村委会"), "community": ("社区", "居委会"),
                    None: ("村", "社区", "居委会", "村委会")}
        hits: dict[str, int] = {}
        for code, name in self.names.items():
            core = self._core[code]
            options = [normalise_text(name)]
            suffixes = (by_class[_kind_class(name)] if self.kind == "village"
                        else ("镇", "街道", "乡"))
            if len(core) >= 2:
                options += [core + suffix for suffix in suffixes]
            found = [len(o) for o in options if o and o in haystack]
            if found:
                hits[code] = max(found)
        if not hits:
            return PlaceMatch("unknown")
        if within is not None and any(self.parents.get(c) == within for c in hits):
            hits = {c: n for c, n in hits.items() if self.parents.get(c) == within}
        longest = max(hits.values())
        codes = sorted(c for c, n in hits.items() if n == longest)
        if len(codes) == 1:
            return PlaceMatch("variant", codes[0], self.names[codes[0]])
        return PlaceMatch("ambiguous", candidates=tuple(self._label(c) for c in codes[:5]))

    def closest(self, value: object, *, n: int = 3) -> tuple[str, ...]:
        """Return up to ``n`` official units whose names are closest to ``value`` (difflib)."""
        keys = place_keys(value, kind=self.kind, prefixes=self.prefixes)
        core = keys[-1] if keys else ""
        close = difflib.get_close_matches(core, list(self._by_core), n=n, cutoff=0.4)
        return tuple(self._label(c) for key in close for c in sorted(self._by_core[key]))[:n]
