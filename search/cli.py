"""The ``seisaku`` command line.

Subcommands: chunks, build, add, remove, search, eval, answer, compare, wording, serve.
Each handler imports its stage lazily so that ``seisaku chunks`` never loads torch.
"""
from __future__ import annotations

import argparse
import json
import locale
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from corpus.records import page_label
from index.config import Settings, load_settings


#: Encodings tried, after the locale's, for a command-line text that is not in the locale's
#: encoding (a Shift_JIS question typed or pasted on a UTF-8 terminal).
FALLBACK_ENCODING = "cp932"


def positive_int(value: str) -> int:
    """argparse type of the count options (``-k``, ``--top``): an integer of at least 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"1 以上の整数を指定してください: {value} / must be a positive integer: {value}")
    return n


def recover_text(value: str) -> tuple[str, str | None]:
    """``(text, encoding used)`` for one command-line argument.

    Python decodes ``sys.argv`` with the file-system encoding; bytes that are not valid in it
    arrive as surrogate escapes. Their original bytes (:func:`os.fsencode`) are decoded with the
    locale's encoding, else CP932. The encoding is None when ``value`` was already clean.
    Raises ``UnicodeDecodeError`` when neither encoding reads the bytes.
    """
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value, None
    raw = os.fsencode(value)
    encodings = list(dict.fromkeys([locale.getpreferredencoding(False).lower(), FALLBACK_ENCODING]))
    for enc in encodings:
        try:
            return raw.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    raise UnicodeDecodeError(FALLBACK_ENCODING, raw, 0, len(raw), "not in the locale encoding nor CP932")


def text_arg(ja: str, en: str) -> Callable[[str], str]:
    """argparse type of a question-like argument named ``ja`` / ``en`` in messages: decoded by
    :func:`recover_text`, with a note on stderr when it was read as CP932; when it cannot be
    read, one error line on stderr and exit status 2."""

    def convert(value: str) -> str:
        try:
            text, enc = recover_text(value)
        except UnicodeDecodeError:
            print(f"エラー: {ja}を読めません（端末の文字コードでも CP932 (Shift_JIS) でもありません）"
                  f" / cannot read the {en}: neither the locale encoding nor CP932 (Shift_JIS)", file=sys.stderr)
            raise SystemExit(2) from None
        if enc == FALLBACK_ENCODING:
            print(f"{ja}を CP932 (Shift_JIS) として読みました / read the {en} as CP932 (Shift_JIS)", file=sys.stderr)
        return text

    return convert


def _settings(args: argparse.Namespace) -> Settings:
    s = load_settings(
        getattr(args, "config", None),
        corpus_dir=getattr(args, "corpus", None),
        index_dir=getattr(args, "index", None),
        model=getattr(args, "model", None),
    )
    if s.vocab_files:  # the user's vocabulary files of this configuration (search.vocab)
        from search.vocab import use_vocab_files

        use_vocab_files(s.vocab_files)
    return s


def _print_messages(messages: Sequence[object]) -> None:
    for m in messages:
        print(str(m), file=sys.stderr)


def _filters(args: argparse.Namespace):
    from search.records import Filters

    return Filters(
        municipality=tuple(getattr(args, "municipality", None) or ()),
        prefecture=tuple(getattr(args, "prefecture", None) or ()),
        kind=tuple(getattr(args, "kind", None) or ()),
        year=tuple(getattr(args, "year", None) or ()),
    )


def cmd_chunks(args: argparse.Namespace) -> int:
    """Print the chunks of the corpus (or of one document), each document's chunks after a line
    saying which pages were cut how (table rows, OCR, the text shape; corpus.shapes)."""
    from corpus.loader import load_corpus
    from corpus.shapes import describe_page_shapes

    s = _settings(args)
    loaded = load_corpus(s.corpus_dir, only=args.doc, max_tokens=s.max_item_tokens, limits=s.limits, isolate=True)
    _print_messages(loaded.messages)
    for meta in loaded.documents:
        chunks = loaded.chunks_of(meta.path)
        if not chunks:
            continue
        shape, runs = loaded.shapes.get(meta.path, ""), loaded.page_shapes.get(meta.path, [])
        if args.json:
            summary = {"doc_id": meta.path, "shape": shape, "page_shapes": [r.to_dict() for r in runs]}
            print(json.dumps(summary, ensure_ascii=False))
        else:
            print(f"■ {meta.path}  {len(chunks)} チャンク  形: {describe_page_shapes(runs) or shape}")
            print()
        for c in chunks:
            if args.json:
                print(json.dumps(c.to_dict(), ensure_ascii=False))
                continue
            pages = page_label(c.page_start, c.page_end)
            print(f"── {c.chunk_id}  {c.municipality}  {c.doc_id}  {pages}")
            print(f"   節: {c.section}")
            if c.item:
                print(f"   項目: {c.item}")
            if c.department:
                print(f"   所管課: {c.department}")
            for line in c.text.splitlines():
                print(f"   {line}")
            print()
    if not args.json:
        print(f"{len(loaded.documents)} 文書, {len(loaded.chunks)} チャンク", file=sys.stderr)
    return 0 if loaded.documents else 1


def cmd_build(args: argparse.Namespace) -> int:
    """Build (or incrementally update) the index from the corpus; ``--ray`` builds on Ray."""
    settings = _settings(args)
    if args.ray is not None:  # the only place Ray is imported
        from index.ray_build import build_index_ray

        report = build_index_ray(settings, address=None if args.ray == "local" else args.ray,
                                 progress=not args.quiet, release_model=True, actor_cpus=args.ray_actor_cpus)
    else:
        from index.build import build_index

        report = build_index(settings, progress=not args.quiet, release_model=True)
    _print_messages(report.messages)
    print(report.summary())
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Add one document to the corpus and the index."""
    from index.update import add_document

    meta = {k: getattr(args, k) for k in ("municipality", "prefecture", "title", "year", "kind", "url")}
    report = add_document(_settings(args), Path(args.file), progress=not getattr(args, "quiet", False), **meta)
    _print_messages(report.messages)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove one document from the corpus manifest and the index."""
    from index.update import remove_document

    report = remove_document(_settings(args), args.doc, delete_file=args.delete_file)
    _print_messages(report.messages)
    print(report.summary())
    return 0 if report.ok else 1


def _engine(args: argparse.Namespace):
    from search.engine import Engine

    return Engine.from_settings(_settings(args))


def cmd_search(args: argparse.Namespace) -> int:
    """Ranked passages with citations."""
    from search.qtype import question_type
    from search.question import clip_question

    engine = _engine(args)
    results = engine.search(args.query, k=args.k, filters=_filters(args), mode=args.mode)
    if args.json:
        out = {"query": args.query, "question_type": question_type(clip_question(args.query)[0]),
               "results": [r.to_json() for r in results]}
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    if not results:
        from search.answers import not_found_message

        print(not_found_message(engine, "該当する文書は見つかりませんでした。"))
    for r in results:
        print(f"{r.rank:>2}. [{r.score:.3f}] {r.citation()}")
        snippet = r.chunk.text.replace("\n", " ")
        print(f"    {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate retrieval on a questions file (metrics of shared/eval/README.md)."""
    from search.evaluate import evaluate, format_report
    from search.evaluate_answers import evaluate_table, format_table_report

    engine = _engine(args)
    modes = ["dense", "bm25", "hybrid"] if args.mode == "all" else [args.mode]
    split = args.split or None
    reports = {m: evaluate(engine, Path(args.questions), mode=m, split=split, strict=args.strict_labels)
               for m in modes}
    table = None if args.no_table else evaluate_table(engine, Path(args.questions), split=split)
    if args.json:
        out = {m: r.to_dict() for m, r in reports.items()}
        if table is not None:
            out["answer_table"] = table.to_dict()
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        for m, r in reports.items():
            print(format_report(r, title=m))
        if table is not None:
            print(format_table_report(table))
    return 0


def _print_view(view, as_json: bool, question: str = "") -> None:
    """An answer view (``to_dict`` / ``to_text``) as indented JSON (with the ``question_type`` of
    ``question``, search.qtype) or as readable text."""
    if not as_json:
        print(view.to_text())
        return
    from search.qtype import question_type
    from search.question import clip_question

    data = view.to_dict()
    data["question_type"] = question_type(clip_question(question)[0])
    print(json.dumps(data, ensure_ascii=False, indent=1))


def cmd_answer(args: argparse.Namespace) -> int:
    """Which municipalities did X: one row per municipality with evidence."""
    from search.answers import municipality_answer

    ans = municipality_answer(_engine(args), args.query, filters=_filters(args))
    _print_view(ans, args.json, args.query)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """How do municipalities approach X: side by side."""
    from search.answers import compare

    table = compare(_engine(args), args.topic, municipalities=args.municipality or None, top_n=args.top)
    _print_view(table, args.json, args.topic)
    return 0


def cmd_wording(args: argparse.Namespace) -> int:
    """How did others word X: verbatim sentences with citations."""
    from search.answers import wording

    found = wording(_engine(args), args.text, k=args.k, filters=_filters(args))
    _print_view(found, args.json, args.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the Gradio app (builds the index first when there is none)."""
    import ui

    return ui.serve(_settings(args), host=args.host, port=args.port, auth=args.auth, share=False)


def _add_common(p: argparse.ArgumentParser, corpus: bool = True, index: bool = True) -> None:
    p.add_argument("--config", help="設定ファイル (TOML)")
    if corpus:
        p.add_argument("--corpus", help="コーパスのディレクトリ（manifest.csv のある所）")
    if index:
        p.add_argument("--index", help="インデックスのディレクトリ")
        p.add_argument("--model", help="埋め込みモデル（e5-small か sentence-transformers のモデル名・パス）")


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--municipality", action="append", type=text_arg("自治体名", "municipality"),
                   help="自治体で絞り込む（複数可）")
    p.add_argument("--prefecture", action="append", type=text_arg("都道府県名", "prefecture"),
                   help="都道府県で絞り込む（複数可）")
    p.add_argument("--kind", action="append", type=text_arg("種類", "kind"), help="文書の種類で絞り込む（複数可）")
    p.add_argument("--year", action="append", type=text_arg("年度", "year"), help="年度で絞り込む（複数可）")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``seisaku`` command."""
    ap = argparse.ArgumentParser(prog="seisaku", description="自治体の行財政改革文書の検索・比較・文例")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("chunks", help="文書をチャンク（改革項目単位）に分けて表示")
    _add_common(p, index=False)
    p.add_argument("--doc", help="この文書（manifest の path）だけ")
    p.add_argument("--json", action="store_true", help="1 行 1 JSON オブジェクト")
    p.set_defaults(func=cmd_chunks)

    p = sub.add_parser("build", help="インデックスを作成・更新（変更のない文書は再計算しない）")
    _add_common(p)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="Ray で作成（読み込み・分割はタスク、埋め込みはアクター）。ADDRESS なしはこのマシンに Ray を起動")
    p.add_argument("--ray-actor-cpus", type=positive_int, default=1, metavar="N",
                   help="--ray: GPU のないクラスタで埋め込みアクター 1 つが使う CPU 数（既定 1）")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("add", help="文書を 1 件追加してインデックスを更新")
    _add_common(p)
    p.add_argument("file")
    p.add_argument("--municipality", required=True, type=text_arg("自治体名", "municipality"))
    for k, ja in (("prefecture", "都道府県名"), ("title", "題名"), ("year", "年度"), ("kind", "種類"), ("url", "URL")):
        p.add_argument(f"--{k}", default="", type=text_arg(ja, k))
    p.add_argument("--quiet", action="store_true", help="進行状況を表示しない")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="文書を 1 件削除してインデックスを更新")
    _add_common(p)
    p.add_argument("doc", help="manifest の path")
    p.add_argument("--delete-file", action="store_true", help="ファイルも削除する")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("search", help="質問に合う箇所を出典つきで検索")
    _add_common(p)
    p.add_argument("query", type=text_arg("質問", "question"))
    p.add_argument("-k", type=positive_int, default=10, help="結果の件数（1 以上）")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="評価用の質問集で検索品質を測る")
    _add_common(p)
    p.add_argument("questions")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25", "all"], default="hybrid")
    p.add_argument("--split", choices=["tune", "check"], help="質問集の半分だけを測る（split 欄）")
    p.add_argument("--no-table", action="store_true", help="回答表（自治体の一覧）の精度を測らない")
    p.add_argument("--strict-labels", action="store_true",
                   help="各正解をその一句だけで判定する（also の別箇所を数えない）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("answer", help="「どの自治体が〜したか」: 自治体ごとの回答と根拠")
    _add_common(p)
    p.add_argument("query", type=text_arg("質問", "question"))
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_answer)

    p = sub.add_parser("compare", help="「各自治体は〜にどう取り組んでいるか」: 横並び比較")
    _add_common(p)
    p.add_argument("topic", type=text_arg("質問", "question"))
    p.add_argument("--municipality", action="append", type=text_arg("自治体名", "municipality"),
                   help="比較する自治体（複数指定）")
    p.add_argument("--top", type=positive_int, default=4, help="自治体を指定しないとき上位何自治体を比べるか（1 以上）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("wording", help="「他の自治体はどう書いたか」: 文例（原文のまま）")
    _add_common(p)
    p.add_argument("text", type=text_arg("質問", "question"))
    p.add_argument("-k", type=positive_int, default=10, help="文例の件数（1 以上）")
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_wording)

    p = sub.add_parser("serve", help="Web アプリ（Gradio）を起動")
    _add_common(p)
    p.add_argument("--host", default="127.0.0.1", help="既定はループバックのみ。公開には 0.0.0.0 を明示")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", help="ログイン 'user:password'（公開時は推奨）")
    p.set_defaults(func=cmd_serve)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seisaku`` console script."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a clear one-line message, not a traceback, for known failures
        from corpus.errors import SeisakuError

        if isinstance(e, SeisakuError):
            print(f"エラー: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
