"""Language identification on the shared files of known language: the app's own guesser against kept
libraries (lingua, py3langid), on whole documents and on summary-length texts.

Labels come from what the files hold, not their names: the WhatsApp "locale" exports hold English
messages (only a few system lines are localized), so they count as English. Lorem-ipsum files count
as Latin. Summary-length texts: 40-word windows of each document and the reference summaries of the
dev sets (English), the sizes at which the summary's language is checked.

    .venv/bin/python -m benchmarks.language_guess --out docs/benchmarks/language_guess.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from app.ingest.detect import load_document
from app.ingest.language import guess_language

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# path (under shared/data) -> language of its content
DOCUMENTS = {
    "pdfs/pl_issue-67_chinese_quarterly_report_22p.pdf": "zh",
    "pdfs/pl_issue-982_CreativityInML_paper.pdf": "en",
    "pdfs/pl_scotus-transcript-p1.pdf": "en",
    "pdfs/pm_dmca_uscopyrightoffice.pdf": "en",
    "pdfs/pm_i1040nr_IRS_instructions.pdf": "en",
    "pdfs/pm_naacl06-shinyama_paper_2col.pdf": "en",
    "pdfs/pm_zen_of_python_CORRUPTED.pdf": "en",
    "pdfs/pp_Seige_of_Vicksburg_scanned_OCR.pdf": "en",
    "pdfs/un_DPR_paper_2col_13p.pdf": "en",
    "chats/whatsapp/pokemon.txt": "en",
    "chats/whatsapp/lorem-2000.txt": "la",
    "chats/whatsapp/chatminer__test_ddmmyy_24hrs.txt": "la",
    "chats/whatsapp/languages__english_android.txt": "en",
    "chats/whatsapp/languages__french_ios.txt": "en",
    "chats/whatsapp/languages__russian_android.txt": "en",
    "chats/whatsapp/languages__japanese_ios.txt": "en",
    "chats/whatsapp/android__WhatsApp_Chat_with_Group_Chat_XXX_Android.txt": "en",
    "chats/telegram/chat-analytics__BIG_20A_5475M.json": "la",
    "chats/telegram/tg-parser__personal_chat.json": "en",
    "chats/slack/slack-export-viewer_testarchive": "en",
    "books/gutenberg_2701_Moby_Dick_Melville.txt": "en",
    "books/gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt": "en",
}
# pp_multilang.pdf labels each greeting with its language on the line before it.
MULTILANG = {"English": "en", "Arabic": "ar", "Russian": "ru", "Chinese (traditional)": "zh", "Thai": "th",
             "Japanese": "ja"}
WINDOW_WORDS = 40
WINDOWS_PER_DOCUMENT = 10
REFERENCES = 100


def samples() -> dict[str, list[tuple[str, str, str]]]:
    """{"documents" | "windows" | "references" | "phrases": [(name, language, text)]}"""
    out: dict[str, list[tuple[str, str, str]]] = {"documents": [], "windows": [], "references": [],
                                                  "phrases": []}
    for rel, lang in DOCUMENTS.items():
        text = load_document(DATA / rel).text_for_model()[:200_000]
        out["documents"].append((rel, lang, text))
        if lang == "zh":  # no spaces: windows of characters
            pieces = [text[i:i + 80] for i in range(0, len(text), len(text) // WINDOWS_PER_DOCUMENT)]
        else:
            words = text.split()
            step = max(len(words) // WINDOWS_PER_DOCUMENT, WINDOW_WORDS)
            pieces = [" ".join(words[i:i + WINDOW_WORDS]) for i in range(0, len(words), step)]
        for index, piece in enumerate(pieces[:WINDOWS_PER_DOCUMENT]):
            if len(piece.split()) >= 10 or lang == "zh":
                out["windows"].append((f"{rel}#{index}", lang, piece))
    for name in ("long_doc_dev.jsonl", "dialogue_dev.jsonl"):
        rows = [json.loads(line) for line in (DATA / "summaries" / name).read_text().splitlines()]
        for row in rows[:REFERENCES // 2]:
            out["references"].append((f"{name}:{row['id']}", "en", row["references"][0]))
    lines = load_document(DATA / "pdfs/pp_multilang.pdf").text_for_model().splitlines()
    for label, text in zip(lines[::2], lines[1::2], strict=False):
        if label.rstrip(":") in MULTILANG:
            out["phrases"].append((label, MULTILANG[label.rstrip(":")], text))
    return out


def app_guesser() -> tuple[Callable[[str], str], float]:
    start = time.perf_counter()
    guess_language("warm up the detector")  # builds lingua's detector once
    return guess_language, time.perf_counter() - start


def lingua_guesser() -> tuple[Callable[[str], str], float]:
    from lingua import LanguageDetectorBuilder

    start = time.perf_counter()
    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
    loaded = time.perf_counter() - start

    def guess(text: str) -> str:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else "und"

    return guess, loaded


def langid_guesser() -> tuple[Callable[[str], str], float]:
    import py3langid

    start = time.perf_counter()
    py3langid.classify("warm up the model")
    loaded = time.perf_counter() - start
    return (lambda text: py3langid.classify(text)[0]), loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/language_guess.json"))
    parser.add_argument("--guessers", default="app,lingua,py3langid",
                        help="comma-separated: app (app.ingest.language), lingua (all its languages), py3langid")
    args = parser.parse_args()
    sets = samples()
    makers = {"app": app_guesser, "lingua": lingua_guesser, "py3langid": langid_guesser}
    guessers = {name: makers[name]() for name in args.guessers.split(",")}
    results: dict = {"command": "python -m benchmarks.language_guess --guessers " + args.guessers, "commit": _commit(), "guessers": {}}
    for name, (guess, load_s) in guessers.items():
        entry: dict = {"load_s": round(load_s, 2), "sets": {}, "errors": []}
        for set_name, items in sets.items():
            start = time.perf_counter()
            right = 0
            for item, lang, text in items:
                found = guess(text)
                right += found == lang
                if found != lang:
                    entry["errors"].append({"set": set_name, "item": item, "want": lang, "got": found,
                                            "text": text[:80]})
            entry["sets"][set_name] = {"n": len(items), "correct": right,
                                       "accuracy": round(right / len(items), 3) if items else None,
                                       "ms_per_text": round(1000 * (time.perf_counter() - start) / max(len(items), 1), 2)}
        results["guessers"][name] = entry
        print(name, {k: (v["correct"], v["n"]) for k, v in entry["sets"].items()}, f"load {load_s:.2f} s")
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
