"""What intake must make of each corpus message, whichever door it came through.

`reply_to` names the corpus message whose request a reply must land on; `status` is the
inbound record's outcome (request, reply, ignored, bounce, quarantined).
"""

from __future__ import annotations

ORIGINALS = [
    "01-plain-utf8.eml", "02-multipart-alternative.eml", "03-html-only.eml", "04-koi8r.eml",
    "05-windows-1251.eml", "06-iso-8859-5.eml", "07-rfc2047-subject.eml", "08-attachments.eml",
    "09-forwarded-inline.eml", "10-forwarded-attachment.eml", "14-out-of-office.eml",
    "15-dsn-bounce.eml", "16-malformed-no-sender.eml", "17-garbage.eml",
    "18-no-message-id.eml", "19-newsletter-bulk.eml", "20-wrong-charset-label.eml",
    "21-comment-form-from.eml", "22-german.eml", "23-chinese.eml",
]
REPLIES = ["11-reply-gmail.eml", "12-reply-outlook.eml", "13-reply-thunderbird-ru.eml"]

EXPECT: dict[str, dict] = {
    "01-plain-utf8.eml": dict(
        status="request", title="Printer on the 3rd floor is jammed",
        text=["“Paper jam – tray 2”", "turn it off and on again"], threading="new"),
    "02-multipart-alternative.eml": dict(
        status="request", title="VPN disconnects every 10 minutes",
        text=["drops every 10 minutes.", "Client version 5.2.1"], not_text=["<div", "=3D"],
        threading="new"),
    "03-html-only.eml": dict(
        status="request", title="Access to finance share for new colleague",
        text=['"Finance & Controlling" share', "- Name: Clara Jones",
              "the access policy (https://wiki.acme.example/access)"],
        not_text=["alert(", "MsoNormal", "<p", "&nbsp;", "ignored title"], threading="new"),
    "04-koi8r.eml": dict(
        status="request", title="Не работает почта",
        text=["Не работает электронная почта в бухгалтерии"], sender_name="Иван Петров",
        threading="new"),
    "05-windows-1251.eml": dict(
        status="request", title="Нет доступа к 1С после смены пароля",
        text=["Прошу восстановить доступ к 1С", "«Неверный логин»"], threading="new"),
    "06-iso-8859-5.eml": dict(
        status="request", title="Сканер сохраняет пустые файлы",
        text=["сохраняет файлы пустыми (0 байт)", "трёх"], threading="new"),
    "07-rfc2047-subject.eml": dict(
        status="request", title="Проблема с календарем — Outlook calendar not syncing",
        text=["stopped syncing"], threading="new"),
    "08-attachments.eml": dict(
        status="request", title="Invoice scan and screenshot of the error",
        text=["rejects the attached invoice"],
        attachments=[("invoice-2026-117.pdf", "application/pdf"), ("error.png", "image/png"),
                     ("Договор.docx", "application/vnd.openxmlformats-officedocument."
                                      "wordprocessingml.document")],
        threading="new"),
    "09-forwarded-inline.eml": dict(
        status="request", title="Fwd: Laptop battery swelling",
        text=["it looks dangerous", "Forwarded message", "(asset 10-442) is swelling"],
        threading="new"),
    "10-forwarded-attachment.eml": dict(
        status="request", title="Fwd: Overdue licence renewal",
        text=["Can you renew this"], not_text=["Your licence expires"],
        attachments=[("Overdue licence renewal.eml", "message/rfc822")], threading="new"),
    "11-reply-gmail.eml": dict(
        status="reply", reply_to="01-plain-utf8.eml", threading="references",
        text=["Update: now the second printer shows the same error."],
        not_text=["wrote:", "> Hi", "Office manager"]),
    "12-reply-outlook.eml": dict(
        status="reply", reply_to="03-html-only.eml", threading="references",
        text=["Clara also needs read access to the payroll folder."],
        not_text=["Sent: Tuesday", "Good morning", "Head of Finance"]),
    "13-reply-thunderbird-ru.eml": dict(
        status="reply", reply_to="04-koi8r.eml", threading="references",
        text=["Письма снова уходят, спасибо!"], not_text=["пишет:", "> Добрый день"]),
    "14-out-of-office.eml": dict(status="ignored", reason="auto_reply"),
    # a well-formed DSN, but about no mail we sent (a forgery would look the same): the
    # address is not marked as failing
    "15-dsn-bounce.eml": dict(status="bounce", reason="gone.user@acme.example 5.1.1 (not about"),
    "16-malformed-no-sender.eml": dict(status="quarantined", reason="no_sender"),
    "17-garbage.eml": dict(status="quarantined", reason="no_headers"),
    "18-no-message-id.eml": dict(
        status="request", title="Monitor flickers", text=["flickers when the laptop is docked"],
        threading="new"),
    "19-newsletter-bulk.eml": dict(status="ignored", reason="auto_reply (precedence: bulk)"),
    "20-wrong-charset-label.eml": dict(
        status="request", title="Принтер печатает кракозябры",
        text=["печатает вместо русских букв"], threading="new"),
    "21-comment-form-from.eml": dict(
        status="request", title="Backup job failed on build server",
        text=["disk quota exceeded"], sender_name="Marc Smith", threading="new"),
    "22-german.eml": dict(
        status="request", title="Outlook startet nach dem Update nicht mehr",
        text=["„Outlook kann nicht gestartet werden“", "Monatsabrechnung"], threading="new"),
    "23-chinese.eml": dict(
        status="request", title="无法连接VPN", text=["无法连接公司的VPN", "错误 809"],
        threading="new"),
}


def check(name: str, record: dict, cards_by_name: dict[str, str]) -> None:
    """Assert one inbound record against EXPECT[name] (cards_by_name: original → card id)."""
    exp = EXPECT[name]
    assert record["status"] == exp["status"], (name, record)
    if "reason" in exp:
        assert exp["reason"] in record["reason"], (name, record["reason"])
    if "title" in exp:
        assert record["title"] == exp["title"], name
    for piece in exp.get("text", []):
        assert piece in record["text"], (name, piece, record["text"])
    for piece in exp.get("not_text", []):
        assert piece not in record["text"], (name, piece, record["text"])
    if exp["status"] in ("request", "reply"):
        got = [(a["filename"], a["content_type"]) for a in record.get("attachments", [])]
        assert got == exp.get("attachments", []), (name, got)
        assert record["threading_reason"] == exp["threading"], (name, record)
    if "reply_to" in exp:
        assert record["card_id"] == cards_by_name[exp["reply_to"]], name
