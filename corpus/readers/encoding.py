"""Encoding detection for Japanese text files (also used by the HTML reader and the manifest).

Order: byte-order marks; ISO-2022-JP escape sequences; strict UTF-8; then the Japanese legacy and
UTF-16 candidates (plus charset-normalizer's guess) decoded strictly and scored by how much the
result looks like Japanese or plain text. charset-normalizer alone is unreliable on short
Japanese text (it takes short EUC-JP for Big5), hence the scoring.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

#: Aliases that should decode with the Microsoft superset (①, ㈱, NEC/IBM kanji).
_ALIASES = {
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ms_kanji": "cp932", "windows-31j": "cp932", "csshiftjis": "cp932", "ms932": "cp932",
    "euc-jp": "euc_jp", "x-euc-jp": "euc_jp", "eucjp": "euc_jp",
}


def canonical_encoding(name: str) -> str:
    """A Python codec name for a declared charset (Shift_JIS → cp932, EUC-JP → euc_jp)."""
    n = name.strip().strip("'\"").lower()
    return _ALIASES.get(n, n)


def _char_class(ch: str) -> int:
    """Scoring weight of one character: kana 3, kanji/ASCII/punct 1, garbage -5, other 0."""
    o = ord(ch)
    if 0x3041 <= o <= 0x30FF:
        return 3
    if 0x20 <= o < 0x7F or ch in "\n\t\r\f":
        return 1
    if 0x4E00 <= o <= 0x9FFF or 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF5E:
        return 1
    if o < 0x20 or 0x7F <= o < 0xA0 or o == 0xFFFD or 0xE000 <= o <= 0xF8FF:
        return -5
    if 0xFF61 <= o <= 0xFF9F:  # half-width katakana: what EUC-JP looks like read as CP932
        return 0
    return 0


def text_score(text: str) -> float:
    """Mean character weight: about 1-2 for real Japanese or ASCII text, low for mojibake."""
    if not text:
        return 0.0
    sample = text[:20000]
    return sum(_char_class(c) for c in sample) / len(sample)


@dataclass(frozen=True)
class Decoded:
    """A decoding result: text, the codec used, and whether some bytes had to be replaced."""

    text: str
    encoding: str
    replaced: bool = False


#: How much better (in :func:`text_score`) a BOM-less UTF-16 reading must score than the others.
_UTF16_NO_BOM_MARGIN = 0.5


def _strict(data: bytes, enc: str) -> str | None:
    try:
        return data.decode(enc)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> Decoded:
    """Decode ``data`` detecting its encoding (see the module docstring).

    ``declared`` (e.g. from an HTML meta tag) is tried first after byte-order marks. When no
    candidate decodes strictly, UTF-8 with replacement characters is returned and ``replaced`` set.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text = _strict(data, enc)
            if text is not None:
                return Decoded(text, enc)
    if declared:
        enc = canonical_encoding(declared)
        text = _strict(data, enc)
        if text is not None:
            return Decoded(text, enc)
    if b"\x1b$B" in data or b"\x1b$@" in data or b"\x1b$(Q" in data:
        text = _strict(data, "iso2022_jp_2004") or _strict(data, "iso2022_jp")
        if text is not None:
            return Decoded(text, "iso2022_jp")
    candidates: list[str] = []
    if b"\x00" not in data:
        text = _strict(data, "utf-8")
        if text is not None:
            # kana in UTF-16-LE without BOM is ASCII-looking ("B0D0" = あい): prefer UTF-16 only
            # when it reads as clearly Japanese (kana score well above plain ASCII's 1.0)
            if text.isascii() and len(data) % 2 == 0 and _utf16_score(data) > 1.5:
                for enc in ("utf-16-le", "utf-16-be"):
                    alt = _strict(data, enc)
                    if alt is not None and text_score(alt) > 1.5:
                        return Decoded(alt, enc)
            return Decoded(text, "utf-8")
        candidates += ["cp932", "euc_jp", "euc_jis_2004"]
    if len(data) % 2 == 0:
        candidates += ["utf-16-le", "utf-16-be"]
    try:
        import charset_normalizer

        best = charset_normalizer.from_bytes(data[:200_000]).best()
        if best is not None and best.encoding not in candidates:
            candidates.append(best.encoding)
    except Exception:  # detection is a hint only
        pass
    scored: list[tuple[float, int, str, str]] = []
    for i, enc in enumerate(candidates):
        text = _strict(data, enc)
        if text is not None:
            # UTF-16 without a BOM must read clearly better than an 8-bit reading: CP932 bytes of
            # ASCII and 「、」 also decode as UTF-16-BE, into kana-looking mojibake (〰ぁ腁…)
            penalty = _UTF16_NO_BOM_MARGIN if enc.replace("_", "-").lower().startswith("utf-16") else 0.0
            scored.append((text_score(text) - penalty, -i, enc, text))
    if scored:
        _, _, enc, text = max(scored)
        return Decoded(text, enc)
    if b"\x00" not in data:
        return _decode_lines(data)
    return Decoded(data.decode("utf-8", errors="replace"), "utf-8", replaced=True)


#: :attr:`Decoded.encoding` of a file whose lines are in different encodings.
MIXED = "mixed"


def _decode_lines(data: bytes) -> Decoded:
    """No single encoding reads the whole file: decode line by line (strict UTF-8, else the
    better-scoring of CP932 and EUC-JP), for files pieced together from parts saved in different
    encodings. Lines no candidate decodes get U+FFFD (``replaced``). ``encoding`` is :data:`MIXED`
    when the lines needed more than one encoding."""
    lines: list[str] = []
    used: set[str] = set()
    replaced = False
    for raw in data.split(b"\n"):
        text, enc = _strict(raw, "utf-8"), "utf-8"
        if text is None:
            best = [(text_score(t), e, t) for e in ("cp932", "euc_jp") if (t := _strict(raw, e)) is not None]
            if best:
                _, enc, text = max(best)
            else:
                text, enc, replaced = raw.decode("utf-8", errors="replace"), "", True
        if enc and not raw.isascii():
            used.add(enc)
        lines.append(text)
    return Decoded("\n".join(lines), MIXED if len(used) > 1 else (used.pop() if used else "utf-8"), replaced)


def _utf16_score(data: bytes) -> float:
    """Best text score of the bytes read as UTF-16 LE or BE (-inf when neither decodes)."""
    best = float("-inf")
    if len(data) % 2:
        data = data[:-1]
    for enc in ("utf-16-le", "utf-16-be"):
        text = _strict(data, enc)
        if text is None and len(data) > 4:  # a surrogate pair cut by the sample
            text = _strict(data[:-2], enc)
        if text is not None:
            best = max(best, text_score(text))
    return best


def utf16_like(data: bytes) -> bool:
    """True when the bytes look like UTF-16 text: a UTF-16 BOM, NUL bytes on every other byte
    (ASCII in UTF-16), or a strict UTF-16 decoding that reads as Japanese/plain text."""
    sample = data[:65536]
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    half = max(len(sample) // 2, 1)
    even_nul = sample[0::2].count(0) > 0.2 * half
    odd_nul = sample[1::2].count(0) > 0.2 * half
    if even_nul != odd_nul:
        return True
    return len(data) % 2 == 0 and _utf16_score(sample) >= 0.8


def looks_binary(data: bytes) -> bool:
    """True when the bytes are clearly not text: over 5 % control bytes other than tab, newline,
    form feed and escape (NUL bytes of UTF-16 text do not count)."""
    sample = data[:65536]
    if not sample:
        return False
    if _utf16_score(sample) >= 0.8:
        return False
    skip_nul = utf16_like(sample)
    ctrl = sum(
        1
        for b in sample
        if (b < 0x20 and b not in (9, 10, 12, 13, 0x1B) and not (b == 0 and skip_nul)) or b == 0x7F
    )
    return ctrl > 0.05 * len(sample)
