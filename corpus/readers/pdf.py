"""PDF: text page by page with pypdfium2, pdfplumber as a second opinion for garbled pages and
for pages with a line pypdfium2 may have cut (it stops a line at 16,384 characters), and for tables
(:mod:`corpus.pdf_tables`: ``Page.tables``, one record per row). Pages without
a text layer (scans, outlined text) or still mostly garbage are OCR'd with Tesseract when it is
installed (:mod:`corpus.readers.ocr`); without it they keep the "needs OCR" warning."""
from __future__ import annotations

import re
import time
from itertools import islice
from dataclasses import replace
from pathlib import Path
from typing import Any

from corpus.limits import DocumentLimits, limit_message
from corpus import pdf_tables as _pdf_tables
from corpus.readers import ocr as _ocr
from corpus.readers.base import Reader, failed, missing_package, page, warning
from corpus.records import IngestMessage, LineInfo, Page, PdfTable, RawDocument

#: A page whose non-space characters are more than this share garbage is re-read with pdfplumber.
GARBAGE_RATIO = 0.3
#: pypdfium2 silently stops a line of (CID-font) text at this many characters; a page with a line
#: this long is re-read with pdfplumber, which reads it whole.
PDFIUM_LINE_CAP = 16_384
_CID = re.compile(r"\(cid:\d+\)")

NO_TEXT_SCANNED = (
    "文字情報がありません（スキャン画像）。OCR が必要です / no text layer (scanned image), needs OCR"
)
NO_TEXT_BLANK = (
    "文字情報がありません（空白ページまたは図のみ） / no text on this page (blank or graphics only)"
)
OCR_NO_TEXT = (
    "文字情報がありません（スキャン画像）。OCR でも文字を読み取れませんでした（写真や図のみ）"
    " / no text layer (scanned image), and OCR found no text in it (photos or graphics only)"
)
#: A page whose text layer is still more than this share garbage after pdfplumber's reading is
#: OCR'd (when Tesseract is installed); the OCR text is used when it is less garbled.
OCR_GARBAGE_RATIO = 0.5
#: OCR text with fewer non-space characters than this is taken as "no text" (a photo, a stamp).
OCR_MIN_CHARS = 5
#: Share of ``max_doc_seconds`` that OCR may use; the rest is left for chunking. Pages not reached
#: in time keep the "needs OCR" warning, and the next build goes on from the OCR cache.
OCR_TIME_SHARE = 0.8


#: A page with at least this many path objects is searched for tables on its ruling lines
#: (:mod:`corpus.pdf_tables`); one path object may draw every line of a table (Excel's
#: Microsoft Print to PDF does), so one is enough.
MIN_TABLE_PATHS = 1
#: A page without ruling lines is searched for tables from word positions when at least this
#: share of its lines (and three) hold two or more numbers.
TABULAR_LINE_SHARE = 0.3
_NUMBER_TOKEN = re.compile(r"(?<![\w,.])[△▲-]?\d[\d,.]*(?![\w,.])")


def looks_tabular(text: str) -> bool:
    """True when a page's text looks like a table without ruling lines: at least three lines,
    and :data:`TABULAR_LINE_SHARE` of them, hold two or more separate numbers."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    hits = sum(1 for ln in lines if len(_NUMBER_TOKEN.findall(ln)) >= 2)
    return hits >= 3 and hits >= TABULAR_LINE_SHARE * len(lines)


def garbage_ratio(text: str) -> float:
    """Share of non-space characters that are garbage: ``(cid:NNN)`` codes, private-use
    characters, U+FFFD and control characters. 0.0 for text without any non-space characters."""
    n_cid = len(_CID.findall(text))
    rest = _CID.sub("", text)
    chars = [c for c in rest if not c.isspace()]
    total = len(chars) + n_cid
    if total == 0:
        return 0.0
    bad = n_cid
    for c in chars:
        o = ord(c)
        if o == 0xFFFD or 0xE000 <= o <= 0xF8FF or o >= 0xF0000 or o < 0x20 or 0x7F <= o < 0xA0:
            bad += 1
    return bad / total


def better_text(first: str, second: str | None) -> str:
    """The less garbled of two extractions of the same page (``first`` wins ties and when
    ``second`` is empty)."""
    if not second or not second.strip():
        return first
    return second if garbage_ratio(second) < garbage_ratio(first) else first


def has_capped_line(text: str, cap: int = PDFIUM_LINE_CAP) -> bool:
    """True when a line of ``text`` has at least ``cap`` characters (pypdfium2 may have cut it)."""
    return len(text) >= cap and any(len(line) >= cap for line in text.splitlines())


def _visible(text: str) -> int:
    """The number of non-space characters in ``text``."""
    return sum(1 for c in text if not c.isspace())


def longer_text(first: str, second: str | None) -> str:
    """``second`` when it has more non-space characters than ``first`` and is not more garbled;
    else ``first``."""
    if second and _visible(second) > _visible(first) and garbage_ratio(second) <= garbage_ratio(first):
        return second
    return first


#: A font name naming a bold face (「Arial-BoldMT」「HGSGothicE-Black」「ヒラギノ角ゴ W6」).
_BOLD_FONT = re.compile(r"bold|black|heavy|demi|(?<![A-Za-z0-9])W[6-9](?![0-9])", re.IGNORECASE)
#: A font weight (``FPDFText_GetFontWeight``) at least this is bold.
BOLD_WEIGHT = 600


def _font_name(raw: Any, textpage: Any, index: int, buf: Any) -> str:
    """The font name of character ``index`` without its subset prefix (「BCDFEE+MS-Gothic」 →
    「MS-Gothic」); "" when pdfium does not know it."""
    import ctypes

    n = raw.FPDFText_GetFontInfo(textpage, index, buf, len(buf), ctypes.byref(ctypes.c_int()))
    if n <= 0 or n > len(buf):
        return ""
    raw_name = buf.value
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:  # Japanese font names are often Shift_JIS (「ＭＳ ゴシック」)
        name = raw_name.decode("cp932", "replace")
    return name.split("+", 1)[1] if re.match(r"^[A-Z]{6}\+", name) else name


def line_infos(textpage: Any, text: str, top_edge: float, page_height: float) -> tuple[LineInfo, ...]:
    """The layout of each line of ``text`` (the ``get_text_range()`` of ``textpage``, one character
    per pdfium character): dominant font size and font, bold, left edge and top/bottom measured
    down from ``top_edge``. Line k is line k of ``text`` with CR/LF as one break. Empty when the
    text does not match the character count (then positions cannot be trusted)."""
    import ctypes
    from collections import Counter

    import pypdfium2.raw as raw

    tp = textpage.raw
    if raw.FPDFText_CountChars(tp) != len(text):
        return ()
    buf = ctypes.create_string_buffer(256)
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    out: list[LineInfo] = []
    chars: list[int] = []

    def flush(start: int, end: int) -> None:
        sizes: Counter[float] = Counter()
        fonts: Counter[str] = Counter()
        bold = 0
        x0, y_top, y_bottom = float("inf"), float("inf"), float("-inf")
        for i in chars:
            sizes[round(raw.FPDFText_GetFontSize(tp, i), 1)] += 1
            font = _font_name(raw, tp, i, buf)
            fonts[font] += 1
            if raw.FPDFText_GetFontWeight(tp, i) >= BOLD_WEIGHT or _BOLD_FONT.search(font):
                bold += 1
            if raw.FPDFText_GetCharBox(tp, i, ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top)):
                x0 = min(x0, left.value)
                y_top = min(y_top, top_edge - top.value)
                y_bottom = max(y_bottom, top_edge - bottom.value)
        if not chars or x0 == float("inf"):
            out.append(LineInfo(text[start:end], 0.0, False, 0.0, 0.0, 0.0, page_height))
            return
        out.append(LineInfo(
            text[start:end], sizes.most_common(1)[0][0], 2 * bold > len(chars),
            round(x0, 1), round(y_top, 1), round(y_bottom, 1), page_height, fonts.most_common(1)[0][0],
        ))

    start = i = 0
    while i < len(text):
        c = text[i]
        if c in "\r\n":
            flush(start, i)
            chars = []
            i += 2 if text.startswith("\r\n", i) else 1
            start = i
            continue
        if not c.isspace():
            chars.append(i)
        i += 1
    flush(start, len(text))
    return tuple(out)


def page_line_infos(pdf_page: Any, textpage: Any, text: str) -> tuple[LineInfo, ...]:
    """:func:`line_infos` of one pypdfium2 page; empty for a rotated page (its character boxes
    are in unrotated coordinates) or when anything fails (the text stands without layout)."""
    try:
        if pdf_page.get_rotation() % 360:
            return ()
        _, bottom, _, top = pdf_page.get_bbox()
        return line_infos(textpage, text, top, top - bottom)
    except Exception:
        return ()


class _Plumber:
    """pdfplumber opened on first use, for second readings of single pages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pdf: Any = None

    def text(self, index: int) -> str | None:
        """The pdfplumber text of the 0-based page ``index``, or None when it cannot be had."""
        try:
            if self.pdf is None:
                import pdfplumber

                self.pdf = pdfplumber.open(self.path)
            return self.pdf.pages[index].extract_text() or ""
        except Exception:  # ImportError included: the first reading stands
            return None

    def tables(self, index: int, previous: PdfTable | None, *, ruled: bool, text_strategy: bool) -> tuple[PdfTable, ...]:
        """The real tables (:func:`corpus.pdf_tables.is_real_table`, or one row under the header
        of ``previous``) of the 0-based page ``index``: on ruling lines when ``ruled``, from word
        positions when ``text_strategy`` and none were found. Empty when pdfplumber fails."""
        try:
            if self.pdf is None:
                import pdfplumber

                self.pdf = pdfplumber.open(self.path)
            plumber_page = self.pdf.pages[index]
            try:
                found = _pdf_tables.page_tables(plumber_page, previous, ruled=ruled, text_strategy=text_strategy)
            finally:
                plumber_page.close()
        except Exception:  # ImportError included: the page keeps its text only
            return ()
        return tuple(
            t for t in found
            if _pdf_tables.is_real_table(t) or (previous is not None and t.header == previous.header)
        )

    def close(self) -> None:
        """Close pdfplumber if it was opened."""
        if self.pdf is not None:
            try:
                self.pdf.close()
            except Exception:
                pass


def pages_not_read(max_pages: int, n: int) -> str:
    """The warning for a PDF of ``n`` pages read only up to ``max_pages``."""
    what = (
        f"{max_pages + 1} ページ目以降（全 {n} ページ）は読みませんでした"
        f" / pages {max_pages + 1}–{n} of {n} not read"
    )
    return limit_message(what, max_pages, "max_pages")


def _usable_tesseract(rel: str, messages: list[IngestMessage]) -> _ocr.TesseractInfo | None:
    """The Tesseract to OCR with, or None (not installed: the "needs OCR" warnings stay; installed
    without Japanese: a warning saying so)."""
    info = _ocr.tesseract_info()
    if info is None:
        return None
    missing = _ocr.missing_languages(info)
    if missing:
        messages.append(warning(
            rel,
            f"Tesseract に言語データ {'+'.join(missing)} がないため OCR しません（apt-get install"
            f" tesseract-ocr-jpn） / Tesseract lacks the language data {'+'.join(missing)}; no OCR",
        ))
        return None
    return info


class _LazyTesseract:
    """:func:`_usable_tesseract`, asked once per document and only when a page needs OCR."""

    def __init__(self, rel: str, messages: list[IngestMessage]) -> None:
        self.rel, self.messages = rel, messages
        self.asked = False
        self.info: _ocr.TesseractInfo | None = None

    def get(self) -> _ocr.TesseractInfo | None:
        """The usable Tesseract or None (the first call may add a warning to ``messages``)."""
        if not self.asked:
            self.asked = True
            self.info = _usable_tesseract(self.rel, self.messages)
        return self.info


def _read_with_ocr(
    pdf: Any,
    rel: str,
    to_ocr: dict[int, tuple[bool, str]],
    tesseract: _ocr.TesseractInfo,
    messages: list[IngestMessage],
    deadline: float | None,
    limits: DocumentLimits | None,
) -> list[Page]:
    """OCR the pages of ``to_ocr`` (0-based index -> (has an image, text layer)); returns their
    pages marked ``ocr`` (or with their text layer when OCR read less), and adds one info
    message per OCR'd page and a warning per page left without text."""
    found, failures = _ocr.ocr_pages(
        pdf, sorted(to_ocr), info=tesseract, cache=_ocr.OcrCache(_ocr.default_cache_dir()), deadline=deadline,
    )
    out: list[Page] = []
    late = 0
    for index, why in failures:
        has_image, layer = to_ocr[index]
        if why == "deadline":
            late += 1
        else:
            messages.append(warning(rel, f"OCR に失敗しました / OCR failed: {why}", page=index + 1))
        if layer:
            out.append(page(index + 1, layer))
        else:
            messages.append(warning(rel, NO_TEXT_SCANNED if has_image else NO_TEXT_BLANK, page=index + 1))
    for index, result in sorted(found.items()):
        has_image, layer = to_ocr[index]
        number = index + 1
        text = result.text
        if _visible(text) >= OCR_MIN_CHARS and (not layer or garbage_ratio(text) < garbage_ratio(layer)):
            out.append(replace(page(number, text), ocr=True))
            messages.append(IngestMessage("info", rel, _ocr.OCR_READ, page=number))
        elif layer:
            out.append(page(number, layer))
        else:
            messages.append(warning(rel, OCR_NO_TEXT if has_image or text.strip() else NO_TEXT_BLANK, page=number))
    if late:
        seconds = float(limits.max_doc_seconds) if limits is not None else 0.0
        messages.append(warning(rel, limit_message(
            f"OCR に時間がかかるため {late} ページを読みませんでした（次の build で OCR キャッシュから続けます）"
            f" / {late} pages not OCR'd in time (the next build goes on from the OCR cache)",
            seconds, "max_doc_seconds",
        )))
    return out


class PdfReader(Reader):
    """``.pdf`` with pypdfium2 (``get_textpage().get_text_range()``)."""

    extensions = (".pdf",)
    name = "PDF"

    def read(self, path: Path, rel: str, limits: DocumentLimits | None = None) -> RawDocument:
        """Read every page; pages without text or with garbled text give warnings naming the page,
        encrypted, truncated and non-PDF files give an error."""
        try:
            import pypdfium2 as pdfium
        except ImportError:
            return failed(rel, missing_package("pypdfium2", "PDF"))
        with path.open("rb") as f:
            head = f.read(1024)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read()
        if b"%PDF-" not in head:
            return failed(rel, "PDF ではありません（%PDF- ヘッダがありません） / not a PDF file (no %PDF- header)")
        if b"%%EOF" not in tail:
            return failed(
                rel,
                "PDF が途中で切れています（%%EOF がありません。ダウンロードをやり直してください）"
                " / truncated or corrupt PDF (no %%EOF at the end)",
            )
        try:
            pdf = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as e:
            text = str(e)
            if "password" in text.lower():
                return failed(
                    rel,
                    "パスワードで保護された PDF です。保護を解除してから追加してください"
                    " / encrypted PDF (password required)",
                )
            return failed(rel, f"PDF が壊れていて開けません / corrupt PDF, cannot open: {text}")
        messages: list[IngestMessage] = []
        pages: list[Page] = []
        plumber = _Plumber(path)
        t0 = time.monotonic()
        tesseract = _LazyTesseract(rel, messages)  # probed at the first page that needs OCR
        #: 0-based index -> (has an image, the text layer to fall back on) of pages to OCR
        to_ocr: dict[int, tuple[bool, str]] = {}
        previous_table: PdfTable | None = None  # the last table of the page before: its header goes on
        try:
            n = len(pdf)
            n_read = n if limits is None else min(n, limits.max_pages)
            for i in range(n_read):
                number = i + 1
                try:
                    p = pdf[i]
                    try:
                        tp = p.get_textpage()
                        try:
                            text = tp.get_text_range()
                            layout = page_line_infos(p, tp, text)
                        finally:
                            tp.close()
                        has_image = False
                        n_paths = sum(1 for _ in islice(p.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_PATH], max_depth=3), MIN_TABLE_PATHS))
                        if not text.strip():
                            has_image = any(True for _ in p.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=5))
                    finally:
                        p.close()
                except Exception as e:  # one bad page never loses the others
                    messages.append(warning(rel, f"このページを読めませんでした / could not read this page: {e}", page=number))
                    continue
                if not text.strip():
                    if tesseract.get() is not None:  # scans and outlined text alike: decided by the text
                        to_ocr[i] = (has_image, "")
                    else:
                        messages.append(warning(rel, NO_TEXT_SCANNED if has_image else NO_TEXT_BLANK, page=number))
                    continue
                ratio = garbage_ratio(text)
                if ratio > GARBAGE_RATIO:
                    chosen = better_text(text, plumber.text(i))
                    which = "pdfplumber" if chosen is not text else "pypdfium2"
                    messages.append(
                        warning(
                            rel,
                            f"文字化けの可能性があります（判読できない文字 {ratio:.0%}）。{which} の結果を使います"
                            f" / text looks garbled ({ratio:.0%} unreadable characters; e.g. a font"
                            f" without a ToUnicode map); using the {which} extraction",
                            page=number,
                        )
                    )
                    if chosen is not text:
                        layout = ()
                    text = chosen
                    if garbage_ratio(text) > OCR_GARBAGE_RATIO and tesseract.get() is not None:
                        to_ocr[i] = (True, text)
                        continue
                elif has_capped_line(text):
                    chosen = longer_text(text, plumber.text(i))
                    if chosen is not text:
                        messages.append(
                            warning(
                                rel,
                                f"{PDFIUM_LINE_CAP:,} 文字以上の長い行があるため、pdfplumber で読み直した結果を使います"
                                f" / a line of {PDFIUM_LINE_CAP:,}+ characters (cut by pypdfium2);"
                                f" using the pdfplumber extraction",
                                page=number,
                            )
                        )
                        text = chosen
                        layout = ()
                found = plumber.tables(
                    i, previous_table, ruled=n_paths >= MIN_TABLE_PATHS, text_strategy=looks_tabular(text),
                ) if n_paths >= MIN_TABLE_PATHS or looks_tabular(text) else ()
                previous_table = found[-1] if found else None
                pages.append(replace(page(number, text), tables=found, lines=layout))
            info = tesseract.get() if to_ocr else None
            if info is not None:
                deadline = None if limits is None else t0 + OCR_TIME_SHARE * float(limits.max_doc_seconds)
                pages.extend(_read_with_ocr(pdf, rel, to_ocr, info, messages, deadline, limits))
                pages.sort(key=lambda p: p.number)
            if n_read < n:
                messages.append(warning(rel, pages_not_read(n_read, n)))
        finally:
            plumber.close()
            pdf.close()
        if n and not pages:
            messages.append(
                warning(
                    rel,
                    "どのページにも文字情報がありません。OCR 済みの PDF を用意してください"
                    " / no page has a text layer; provide an OCR'd PDF",
                )
            )
        return RawDocument(path=rel, pages=pages, messages=messages)
