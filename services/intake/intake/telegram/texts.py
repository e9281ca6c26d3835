"""What the bot says, in Russian and English (the user's Telegram language picks one)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "choose_service": {"en": "Hello! What do you need help with? Choose a service:",
                       "ru": "Здравствуйте! С чем вам помочь? Выберите услугу:"},
    "no_services": {"en": "No services are available right now.",
                    "ru": "Сейчас нет доступных услуг."},
    "describe": {"en": "{service}. Describe your request in one message "
                       "(the first line becomes its title). You may attach photos or files.",
                 "ru": "{service}. Опишите обращение одним сообщением "
                       "(первая строка станет заголовком). Можно приложить фото или файлы."},
    "ask_field": {"en": "{label}{optional}", "ru": "{label}{optional}"},
    "optional": {"en": " (optional)", "ru": " (необязательно)"},
    "skip": {"en": "Skip", "ru": "Пропустить"},
    "yes": {"en": "Yes", "ru": "Да"},
    "no": {"en": "No", "ru": "Нет"},
    "invalid": {"en": "{label}: {error}. Please try again.",
                "ru": "{label}: {error}. Попробуйте ещё раз."},
    "use_buttons": {"en": "Please choose one of the buttons.",
                    "ru": "Пожалуйста, выберите один из вариантов."},
    "created": {"en": "Thank you! Your request «{title}» is accepted; its number follows "
                      "in a moment.",
                "ru": "Спасибо! Обращение «{title}» принято, номер пришлём через мгновение."},
    "numbered": {"en": "Your request {number} «{title}» is registered. Reply to this message "
                       "to add a comment.",
                 "ru": "Ваше обращение {number} «{title}» зарегистрировано. Ответьте на это "
                       "сообщение, чтобы добавить комментарий."},
    "my_none": {"en": "You have no requests yet. Send /start to create one.",
                "ru": "У вас пока нет обращений. Отправьте /start, чтобы создать."},
    "my_header": {"en": "Your requests:", "ru": "Ваши обращения:"},
    "my_pending": {"en": "being registered", "ru": "регистрируется"},
    "reply_added": {"en": "Added to {number}.", "ru": "Добавлено в {number}."},
    "reply_unknown": {"en": "I could not tell which request this reply belongs to. "
                            "Reply to a message that names the request, or send /my.",
                      "ru": "Не удалось понять, к какому обращению относится ответ. "
                            "Ответьте на сообщение с номером обращения или отправьте /my."},
    "help": {"en": "Send /start to create a request, /my to see your requests. "
                   "Reply to a request's message to add a comment.",
             "ru": "Отправьте /start, чтобы создать обращение, /my — чтобы посмотреть свои. "
                   "Ответьте на сообщение обращения, чтобы добавить комментарий."},
    "cancelled": {"en": "Cancelled.", "ru": "Отменено."},
    "attached": {"en": "File attached: {name}", "ru": "Файл приложен: {name}"},
    "file_too_large": {"en": "This file is too large ({size} bytes); the limit is {limit}.",
                       "ru": "Файл слишком большой ({size} байт); предел — {limit}."},
    "rated": {"en": "Thank you for your rating!", "ru": "Спасибо за оценку!"},
    "rate_refused": {"en": "This rating button is not for you.",
                     "ru": "Эта кнопка оценки не для вас."},
    "restricted_service": {
        "en": "«{service}» is only for some customers, and here I cannot tell who you are. "
              "Please use the customer portal or write by e-mail. Send /start for the others.",
        "ru": "«{service}» доступна не всем клиентам, а здесь я не могу узнать, кто вы. "
              "Воспользуйтесь порталом или напишите по почте. Остальные услуги — /start."},
    "stale_button": {"en": "This button is no longer active.",
                     "ru": "Эта кнопка больше не действует."},
}


def t(key: str, lang: str, **kw: object) -> str:
    entry = TEXTS[key]
    return (entry.get(lang) or entry["en"]).format(**kw)
