"""The Telegram channel: a Bot API client, the request dialog, webhook and long polling."""
