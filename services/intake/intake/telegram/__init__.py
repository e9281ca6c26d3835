"""The Telegram channel: Bot API transport, update router, the bot's outbox and its adapter
(the request dialog itself is intake.domain.dialog)."""
