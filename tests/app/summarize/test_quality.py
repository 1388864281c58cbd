"""The garbage detectors on real bad outputs of the default model, and on faithful summaries that must pass.

The bad outputs were written by the default model (SmolLM2-135M-Instruct) on the current main before
issue 17, with ``sepsum summarize FILE --length short --format json`` on the shared files named
below; the issue's own quotes are used as they were reported.
"""

from __future__ import annotations

import json

import pytest

from app.ingest.detect import load_document
from app.summarize import prompts
from app.summarize.quality import KINDS, check_summary, describe

INSTRUCTIONS = prompts.prompt_texts(prompts.PLAIN, "report", "short", "bullets", "English")

# (shared file, the model's summary, kinds that must be flagged)
REAL_BAD = [
    ("pdfs/sf_habibi_arabic.pdf",  # the instruction after one line of the document, as the issue's French PDF
     "بيشار الحَبیقة حاله فلسطف من 2013\n\nCover its purpose, the main findings and the recommendations. "
     "Write in Arabic. Do not repeat yourself.", {"prompt_echo"}),
    ("pdfs/pp_multilang.pdf",
     "Summarize the meeting transcript above in 3 bullet points, one line each:\n1. Hello World\n"
     "2. Привет, мир\n3. こんにちは世界\n4. 玄水苦骨 (Thai)\n5. 安却家 (Japanese)", {"prompt_echo"}),
    ("chats/whatsapp/ios__WhatsApp_Chat_-_Elon_Musk_(RU).txt",
     "😊\nThis message is reply to another. Hello World\n"
     "Местоположение: https://maps.google.com/?q=51.5021456,-0.127397\n"
     "Pimlico Gardens (London, United Kingdom): https://foursquare.com/v/4e89af95aabdffbaccceadzxmjwg-london_uk\n"
     "Dmitry S (@Miket) [@Blog] 👏 #Londen @", {"url", "source_copy"}),
    ("chats/whatsapp/languages__deutch_android_media.txt",
     "Hello World\nImage with caption\nlocatie: https://maps.google.com/?q=36.667124985011,29.113155364990234\n"
     "[2023-01-07 23:32] Dmitry S: Gemiste spraakoproep\nGemiste spraakoproEPEK\n😊\nSome file.txt\n"
     "Resume-DmitryStarkov.pdf\nTemplate.docx\nnull", {"raw_header", "url"}),
    ("chats/whatsapp/pokemon.txt",
     "[2016-10-31 20:45] Prof. Oak: Smart-pokeball is created\n"
     "[2016-10-31 22:07] Ash Ketchum: Good to have a new group!\n"
     "[2016-10-31 23:28] Misty: Hey people, I was on holiday in Sinnoh. Crazy region.\n"
     "[2016-10-31 29:00] Jessie & James: Hey guys, thanks for adding us!", {"raw_header"}),
    ("chats/whatsapp/languages__japanese_ios.txt",
     "😊\nThis message is reply to another. Hello World This response comes from a chatbot that can share "
     "information, but it does not repeat itself in the text as you requested. Instead of repeating yourself use "
     "\"❌\" or start with your own words for example 'this' and then write what's needed here: "
     "['hello world', '#DmitryS']", {"prompt_echo"}),
]

# From the walk over the shared data (tests/app/summarize/test_walk_shared.py, default mode, 48 tokens),
# English asked: Chinese lines and a number.
REAL_BAD.append(("pdfs/pl_issue-67_chinese_quarterly_report_22p.pdf",
                 "1. 二、汇率变动对现金及现金等价物\n2. 3,062.61 838", {"wrong_language"}))

# The pokemon chat's retry output, seen by the evidence helper: a header without zero padding or time.
REAL_BAD.append(("chats/whatsapp/pokemon.txt", "[2016-9-3] Ash Ketchum: Hey guys! Brock: Hey Ash, good to see you",
                 {"raw_header"}))

REAL_BAD.append(("chats/telegram/chatminer__test_single_export.json",
                 "The conversation is now ready to be edited. Please go ahead and share the next part of the "
                 "conversation, which will help me improve it further.", {"prompt_echo"}))
REAL_BAD.append(("chats/whatsapp/chatminer__test_ddmmyy_24hrs.txt",
                 "The conversation is about a group of people who decided to create a new game based on the Roman "
                 "calendar. The discussion covers what was discussed, and it's not repeated again in this exact "
                 "same 5 bullet points format.", {"prompt_echo"}))

REAL_BAD.append(("chats/whatsapp/languages__english_android_media.txt",
                 "Авто\nВасылья Виделимария 2019-2023, переменная компании Dmit", {"wrong_language"}))
REAL_BAD.append(("chats/discord/chat-analytics__DM_2A_2M.json",
                 "[2019-03-14 17:58] I'm going to the party.\n(I'll be there for a little while.)\n"
                 "Someone's nickname: something text\nText: \"", {"raw_header"}))

REAL_BAD.append(("chats/whatsapp/languages__english_android.txt",
                 "😊\nThe conversation is over. I'm sorry for any misunderstanding, and thank you again for the "
                 "excellent work that has brought us together on this platform! 🌉\n\n2019-34: [6]", {"prompt_echo"}))

# Quoted in issue 17 (their sources are not in the shared data: the sample report stands in).
ISSUE_QUOTES = [
    ("Procès-verbal de la séance publique du conseil municipal. Summarize the report above in 5 bullet points, "
     "one line each, starting with '- '. Cover its purpose, the main findings and the recommendations. Do not "
     "repeat yourself. Write in French. Do not", {"prompt_echo"}),
    ("This message is reply to another The conversation above was re-edited for grammar and clarity. "
     "[2023-11-24 15:19] Jana: Sejdeme se u nádraží https://maps.google.com/?q=50.08,14.43",
     {"prompt_echo", "raw_header", "url"}),
    ("The board met on Monday. (End of part 4.) Summarize part 3 of the report in two sentences: who did what, "
     "decisions, numbers. (End of part 5.) This is another alternative aspect of the plan.", {"prompt_echo"}),
]


def _source(shared_data, rel: str) -> str:
    return load_document(shared_data / rel).text_for_model()


@pytest.mark.parametrize(("rel", "summary", "kinds"), REAL_BAD, ids=[row[0].split("/")[-1] for row in REAL_BAD])
def test_real_bad_outputs_are_flagged(shared_data, rel, summary, kinds):
    flags = check_summary(summary, source_text=_source(shared_data, rel), language="en", prompt_texts=INSTRUCTIONS)
    found = {flag.kind for flag in flags}
    assert kinds <= found, flags
    assert all(flag.kind in KINDS for flag in flags)


@pytest.mark.parametrize(("summary", "kinds"), ISSUE_QUOTES)
def test_the_issues_quotes_are_flagged(sample_path, summary, kinds):
    source = sample_path.read_text(encoding="utf-8")
    found = {flag.kind for flag in check_summary(summary, source_text=source, language=None,
                                                 prompt_texts=INSTRUCTIONS)}
    assert kinds <= found


def test_an_instruction_run_is_an_echo_only_when_the_document_lacks_it(sample_path):
    source = sample_path.read_text(encoding="utf-8")
    echo = "- The pumps failed. Cover its purpose, the main findings and the recommendations of the report."
    assert {f.kind for f in check_summary(echo, source_text=source, prompt_texts=INSTRUCTIONS)} == {"prompt_echo"}
    quoted = source + "\nCover its purpose, the main findings and the recommendations of the report."
    assert check_summary(echo, source_text=quoted, prompt_texts=INSTRUCTIONS) == []


def test_human_summaries_of_the_dev_sets_pass(shared_data):
    """871 reference summaries, written by people for their documents: no detector may fire."""
    flagged = []
    for name, key in (("long_doc_dev.jsonl", "document"), ("dialogue_dev.jsonl", "dialogue")):
        for line in (shared_data / "summaries" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for reference in row["references"]:
                flags = check_summary(reference, source_text=row[key], language="en", prompt_texts=INSTRUCTIONS)
                if flags:
                    flagged.append((row["id"], flags))
    assert flagged == []


def test_a_faithful_summary_quoting_the_source_passes(sample_path):
    source = sample_path.read_text(encoding="utf-8")
    summary = ("- The Millbrook Valley Water Board reports on its response to the dry summer.\n"
               "- It describes what happened, what worked and what the board recommends.\n"
               "- Field officers and drought stages are part of the plan for next year.")
    assert check_summary(summary, source_text=source, language="en", prompt_texts=INSTRUCTIONS) == []


def test_a_citation_stamp_is_not_a_copied_header(shared_data):
    source = _source(shared_data, "chats/whatsapp/pokemon.txt")
    summary = ("Ash Ketchum greets the group and Brock answers [2016-08-06 13:25]. Prof. Oak announces the "
               "smart pokeball, and Misty tells about her holiday in Sinnoh [2016-10-31 23:28].")
    assert check_summary(summary, source_text=source, language="en", prompt_texts=INSTRUCTIONS) == []


def test_a_long_copy_is_flagged_and_allowed_for_extractive_text(shared_data):
    source = _source(shared_data, "pdfs/pm_dmca_uscopyrightoffice.pdf")
    copied = " ".join(source.split()[200:260])
    assert {f.kind for f in check_summary(copied, source_text=source)} == {"source_copy"}
    assert check_summary(copied, source_text=source, extractive=True) == []
    chat = _source(shared_data, "chats/whatsapp/languages__russian_android.txt")
    lines = "\n".join(chat.splitlines()[:4])  # the chat's own lines: headers, a link, Russian words
    assert check_summary(lines, source_text=chat, language="fr", extractive=True) == []


def test_the_language_asked_for_is_checked(shared_data):
    """A real English output of the default model: right when English was asked, wrong for French."""
    text = ("The Millbrook Valley Water Board report describes what happened during the dry summer, how the "
            "response worked and why it reduced the use of water in the valley.")
    source = _source(shared_data, "pdfs/pm_dmca_uscopyrightoffice.pdf")
    assert check_summary(text, source_text=source, language="en") == []
    assert [f.kind for f in check_summary(text, source_text=source, language="fr")] == ["wrong_language"]
    assert check_summary("Too short to tell.", source_text=source, language="fr")[0].kind == "too_short"


def test_repetition_and_emptiness(sample_path):
    source = sample_path.read_text(encoding="utf-8")
    line = "- The board asked every household to save water during the summer."
    assert {f.kind for f in check_summary(f"{line}\n{line}", source_text=source)} == {"repetition"}
    looping = " ".join(["the water board said that"] * 12)
    assert "repetition" in {f.kind for f in check_summary(looping, source_text=source)}
    assert [f.kind for f in check_summary("- -", source_text=source)] == ["too_short"]


def test_the_fallback_line_says_why():
    from app.summarize.quality import Flag

    line = describe([Flag("prompt_echo", "x"), Flag("url", "y")])
    assert line == "The model's summary repeated its instructions and copied raw links; showing the key passages instead."


def test_a_paraphrased_instruction_is_an_echo(shared_data):
    """Single mode's second try on dialogsum_test_122 (`sepsum eval rouge`, session 9) passed the checks then."""
    rows = (json.loads(line) for line in (shared_data / "summaries" / "dialogue_dev.jsonl").read_text().splitlines())
    source = next(row["dialogue"] for row in rows if row["id"] == "dialogsum_test_122")
    summary = ("#Person1 #: Did you work in a charity organization?\n"
               "Fully rewritten as follows, using only facts stated directly and not repeating myself.")
    flags = check_summary(summary, source_text=source, language="en", prompt_texts=INSTRUCTIONS)
    assert "prompt_echo" in {flag.kind for flag in flags}
