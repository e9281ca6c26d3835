"""The portal's UI text in English and Russian, the languages it speaks."""

from __future__ import annotations

from desk_contracts.catalog import FIELD_ERRORS_RU

LANGUAGES = ("en", "ru")

TEXT: dict[str, tuple[str, str]] = {
    # key: (English, Russian)
    "skip": ("Skip to content", "Перейти к содержимому"),
    "nav.home": ("My requests", "Мои обращения"),
    "nav.settings": ("Notifications", "Уведомления"),
    "nav.signout": ("Sign out", "Выйти"),
    "nav.language": ("Language", "Язык"),
    "login.title": ("Sign in", "Вход"),
    "login.intro": (
        "Enter your work e-mail. We will send you a one-time code — no password needed.",
        "Введите рабочий e-mail. Мы пришлём одноразовый код — пароль не нужен.",
    ),
    "login.email": ("E-mail", "E-mail"),
    "login.send": ("Send me a code", "Прислать код"),
    "login.bad_email": ("Enter a valid e-mail address.", "Введите корректный адрес e-mail."),
    "login.code_title": ("Enter your code", "Введите код"),
    "login.code_sent": (
        ("If {email} may use this service desk, we have sent a 6-digit code to it. The code is "
         "valid for {minutes} minutes."),
        ("Если адрес {email} может пользоваться порталом, мы отправили на него 6-значный код. "
         "Код действует {minutes} мин."),
    ),
    "login.code": ("Code from the e-mail", "Код из письма"),
    "login.verify": ("Sign in", "Войти"),
    "login.wrong": (
        "This code is not right. Check the e-mail and try again.",
        "Код неверный. Проверьте письмо и попробуйте ещё раз.",
    ),
    "login.dead": (
        ("This code can no longer be used (expired, already used or too many attempts). Request "
         "a new one."),
        ("Этим кодом больше нельзя воспользоваться (истёк, уже использован или слишком много "
         "попыток). Запросите новый."),
    ),
    "login.again": ("Use another address or get a new code", "Другой адрес или новый код"),
    "login.limited": (
        "Too many codes were requested. Please try again in an hour.",
        "Запрошено слишком много кодов. Попробуйте через час.",
    ),
    "login.expired_form": (
        "The form has expired. Please try again.",
        "Форма устарела. Попробуйте ещё раз.",
    ),
    "mail.subject": ("Your sign-in code: {code}", "Ваш код для входа: {code}"),
    "mail.body": (
        ("Your code to sign in to {desk} is {code}.\n\nOr open this link in the same "
         "browser:\n{link}\n\nThe code is valid for {minutes} minutes and works once. If you did not "
         "ask for it, ignore this e-mail."),
        ("Ваш код для входа в {desk}: {code}.\n\nИли откройте ссылку в том же "
         "браузере:\n{link}\n\nКод действует {minutes} мин. и только один раз. Если вы его не "
         "запрашивали, просто удалите это письмо."),
    ),
    "home.title": ("Service desk", "Служба поддержки"),
    "home.catalog": ("How can we help?", "Чем мы можем помочь?"),
    "home.no_services": ("There are no services you can use yet.", "Пока нет доступных вам услуг."),
    "home.current": ("Current requests", "Текущие обращения"),
    "home.closed": ("Closed requests", "Закрытые обращения"),
    "home.none_current": ("You have no open requests.", "У вас нет открытых обращений."),
    "home.none_closed": ("No closed requests yet.", "Закрытых обращений пока нет."),
    "home.sent": (
        "Your request has been sent. It will appear here with its number in a moment.",
        "Обращение отправлено. Через мгновение оно появится здесь с номером.",
    ),
    "home.pending": ("Being registered", "Регистрируется"),
    "home.more": ("Older", "Более ранние"),
    "home.newer": ("Newer", "Более новые"),
    "home.org": ("Requests of {org}", "Обращения организации {org}"),
    "col.number": ("Number", "Номер"),
    "col.title": ("Subject", "Тема"),
    "col.status": ("Status", "Статус"),
    "col.updated": ("Last activity", "Последняя активность"),
    "new.title": ("New request: {service}", "Новое обращение: {service}"),
    "new.subject": ("Subject", "Тема"),
    "new.text": ("Describe your request", "Опишите ваш вопрос"),
    "new.due": ("Needed by", "Нужно к дате"),
    "new.attachments": ("Attachments", "Вложения"),
    "new.attachments_help": ("Up to 25 MB per file.", "До 25 МБ на файл."),
    "new.submit": ("Send request", "Отправить обращение"),
    "new.cancel": ("Back", "Назад"),
    "new.only_if": ("Only if “{field}” is: {values}", "Только если «{field}»: {values}"),
    "new.errors": ("Please correct the marked fields.", "Исправьте отмеченные поля."),
    "new.choose": ("— choose —", "— выберите —"),
    "req.status": ("Status", "Статус"),
    "req.service": ("Service", "Услуга"),
    "req.created": ("Created", "Создано"),
    "req.details": ("Details", "Подробности"),
    "req.conversation": ("Conversation", "Переписка"),
    "req.you": ("You", "Вы"),
    "req.support": ("Support", "Поддержка"),
    "req.sending": ("Sending…", "Отправляется…"),
    "req.reply": ("Reply", "Ответить"),
    "req.reply_label": ("Your message", "Ваше сообщение"),
    "req.reply_send": ("Send", "Отправить"),
    "req.reply_sent": ("Your message has been sent.", "Сообщение отправлено."),
    "req.rate": ("How did we do?", "Как мы справились?"),
    "req.rate_score": ("Rating", "Оценка"),
    "req.rate_comment": ("Comment (optional)", "Комментарий (необязательно)"),
    "req.rate_send": ("Rate", "Оценить"),
    "req.rated": (
        "You rated this request {score} of 5. Thank you!",
        "Вы оценили обращение на {score} из 5. Спасибо!",
    ),
    "req.followup": (
        "Not solved, or a new question on this topic?",
        "Не решено или новый вопрос по этой теме?",
    ),
    "req.followup_label": (
        "What is still wrong, or what is your new question?",
        "Что не так или какой у вас новый вопрос?",
    ),
    "req.followup_send": ("Open a follow-up request", "Открыть связанное обращение"),
    "req.followup_subject": ("Follow-up to {number}: {title}", "Продолжение {number}: {title}"),
    "req.followup_of": ("Follow-up of", "Продолжение обращения"),
    "req.followups": ("Follow-ups", "Связанные обращения"),
    "req.attachment": ("Attachment", "Вложение"),
    "req.empty_text": ("Write a message.", "Напишите сообщение."),
    "rate.title": ("Rate request {number}", "Оценка обращения {number}"),
    "rate.confirm": ("Confirm your rating of {score} of 5.", "Подтвердите оценку {score} из 5."),
    "rate.change": ("Another rating:", "Другая оценка:"),
    "rate.thanks": ("Thank you for your rating!", "Спасибо за оценку!"),
    "rate.bad": ("Choose a rating from 1 to 5.", "Выберите оценку от 1 до 5."),
    "settings.title": ("Notification settings", "Настройки уведомлений"),
    "settings.intro": (
        "Choose how we tell you about your requests.",
        "Выберите, как сообщать вам о ваших обращениях.",
    ),
    "settings.kind": ("Event", "Событие"),
    "settings.email": ("E-mail", "E-mail"),
    "settings.telegram": ("Telegram", "Telegram"),
    "settings.save": ("Save", "Сохранить"),
    "settings.saved": ("Your settings have been saved.", "Настройки сохранены."),
    "kind.acknowledgment": ("We received your request", "Мы получили ваше обращение"),
    "kind.status_changed": ("The status of a request changed", "Изменился статус обращения"),
    "kind.agent_reply": ("Support replied", "Поддержка ответила"),
    "kind.rating_request": ("Asking for your rating", "Просьба оценить работу"),
    "kind.reminder": (
        "Reminders when we wait for your answer",
        "Напоминания, когда мы ждём вашего ответа",
    ),
    "widget.title": ("My requests", "Мои обращения"),
    "widget.signin": ("Sign in to see your requests", "Войдите, чтобы увидеть обращения"),
    "widget.new": ("New request", "Новое обращение"),
    "error.404": ("Not found", "Не найдено"),
    "error.404_text": (
        "There is nothing here, or you may not see it.",
        "Здесь ничего нет, или у вас нет доступа.",
    ),
    "error.generic": ("This did not work", "Не получилось"),
    "error.generic_text": (
        "The page cannot do that. Go back and try again.",
        "Страница не может этого сделать. Вернитесь и попробуйте ещё раз.",
    ),
    "error.403": ("This form has expired", "Форма устарела"),
    "error.403_text": (
        "Go back, reload the page and try again.",
        "Вернитесь, обновите страницу и попробуйте ещё раз.",
    ),
    "error.429": ("Too many requests", "Слишком много запросов"),
    "error.upload": (
        "The attachment could not be stored; please try again.",
        "Не удалось сохранить вложение; попробуйте ещё раз.",
    ),
    "error.too_large": ("“{name}” is too large.", "Файл «{name}» слишком большой."),
    "error.form_too_large": (
        "The files together are larger than {limit} MB; attach fewer or smaller files.",
        "Файлы вместе больше {limit} МБ; приложите меньше файлов или файлы поменьше.",
    ),
    "error.past_date": ("must not be in the past", "не может быть в прошлом"),
    "error.required": ("is required", "обязательное поле"),
    "footer": ("Service desk portal", "Портал службы поддержки"),
    "yes": ("Yes", "Да"),
    "no": ("No", "Нет"),
    # the help centre (portal.api.help): articles of boards' knowledge base
    "nav.help": ("Help centre", "Справка"),
    "help.title": ("Help centre", "Справочный центр"),
    "help.intro": ("Find an answer in our articles.", "Найдите ответ в наших статьях."),
    "help.search": ("Search the help centre", "Поиск по справке"),
    "help.find": ("Search", "Найти"),
    "help.results": ("Results for “{q}”", "Результаты по запросу «{q}»"),
    "help.no_results": ("No article matches. Try other words, or write to us.",
                        "Подходящих статей нет. Попробуйте другие слова или напишите нам."),
    "help.categories": ("Topics", "Темы"),
    "help.latest": ("Recently updated", "Недавно обновлённые"),
    "help.none": ("No articles yet.", "Статей пока нет."),
    "help.articles": ("{n} articles", "статей: {n}"),
    "help.updated": ("Updated {at}", "Обновлено {at}"),
    "help.back": ("All help topics", "Все темы справки"),
    "help.unavailable": ("The help centre is not available right now. Please try again "
                         "shortly.", "Справочный центр сейчас недоступен. Попробуйте чуть "
                         "позже."),
    "help.suggest_title": ("These articles may answer your question",
                           "Возможно, ответ уже есть в этих статьях"),
    "help.solved": ("This solved my problem", "Это решило мою проблему"),
    "help.solved_thanks": ("Glad it helped. Your draft was closed and no request was filed.",
                           "Рады, что помогло. Черновик закрыт, обращение не создано."),
    "help.still_need": ("Still need help? Write a request", "Всё ещё нужна помощь? "
                        "Создайте обращение"),
    "help.open": ("Read the article", "Открыть статью"),
}

# the validator's one exception to the table: "must be at most N characters"
_AT_MOST = ("must be at most ", "должно быть не длиннее ")


def translate(key: str, language: str, **values: object) -> str:
    en, ru = TEXT.get(key, (key, key))
    text = ru if language == "ru" else en
    return text.format(**values) if values else text


def field_error(message: str, language: str) -> str:
    """A form validator's message (desk_contracts speaks English) in the page's language:
    exact from contracts' table, or by a key ending in ': ' that the message starts with."""
    if language != "ru":
        return message
    if message in FIELD_ERRORS_RU:
        return FIELD_ERRORS_RU[message]
    for en, ru in FIELD_ERRORS_RU.items():
        if en.endswith(": ") and message.startswith(en):
            return ru + message[len(en):]
    if message.startswith(_AT_MOST[0]):
        return _AT_MOST[1] + message[len(_AT_MOST[0]):].replace(" characters", " символов")
    return message
