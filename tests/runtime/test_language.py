"""Language detection of customers' text: the right code for real sentences, "unknown" when thin."""

from __future__ import annotations

import pytest
from desk_runtime.language import detect_language


@pytest.mark.parametrize("language, text", [
    ("en", "Hi, the printer shows Paper jam and I cannot print anything since this morning."),
    ("de", "Hallo, seit gestern funktioniert der Drucker im 3. Stock nicht mehr. Können Sie "
           "bitte jemanden schicken? Danke"),
    ("fr", "Bonjour, je ne peux pas me connecter au VPN depuis ce matin. Pouvez-vous vérifier "
           "mon compte ? Merci"),
    ("es", "Hola, no puedo acceder a mi correo desde ayer. ¿Pueden ayudarme, por favor? Gracias"),
    ("it", "Ciao, la stampante non funziona e non riesco a stampare nulla. Grazie per l'aiuto"),
    ("pt", "Olá, não consigo acessar o sistema desde ontem. Vocês podem verificar a minha "
           "conta? Obrigado"),
    ("nl", "Hallo, ik kan sinds gisteren niet meer inloggen op het portaal. Kunt u mijn account "
           "controleren? Bedankt"),
    ("pl", "Dzień dobry, od wczoraj nie mogę się zalogować do systemu. Czy możecie sprawdzić "
           "moje konto? Dziękuję"),
    ("ru", "Добрый день! Календарь в Outlook перестал синхронизироваться с телефоном, "
           "ошибка 0x800CCC0E."),
    ("uk", "Добрий день. Не працює принтер на третьому поверсі, прошу допомогти."),
    ("zh", "您好，我的电脑无法连接公司的VPN，客户端一直提示“错误 809”。请帮忙检查一下，谢谢！"),
    ("ja", "こんにちは。今朝からVPNに接続できません。確認していただけますか。"),
    ("ko", "안녕하세요. 오늘 아침부터 VPN에 연결할 수 없습니다."),
    ("el", "Καλημέρα, ο εκτυπωτής στον τρίτο όροφο δεν λειτουργεί."),
    ("ar", "مرحبا، لا أستطيع الدخول إلى البريد الإلكتروني منذ الصباح"),
    ("he", "שלום, המדפסת בקומה השלישית לא עובדת"),
])
def test_real_sentences(language, text):
    assert detect_language(text) == language


def test_a_russian_writer_quoting_english_is_russian():
    text = ("Коллеги, после обновления Outlook выдаёт: \"Cannot start Microsoft Outlook. "
            "Cannot open the Outlook window. The set of folders cannot be opened.\" Помогите.")
    assert detect_language(text) == "ru"


@pytest.mark.parametrize("text", [
    "", "ok", "VPN error 809", "Monitor flickers", "https://acme.example/wiki/Printers",
    "SAP CRM ERP VPN LDAP", "12345 !!! ???",
])
def test_too_little_to_tell_is_unknown(text):
    assert detect_language(text) == "unknown"
