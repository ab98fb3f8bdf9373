"""The chat commands, one module per concern; importing this package registers them all, in
the order ``!help`` lists them."""

from bot.handlers import composing, history, info, moderation

__all__ = ["composing", "history", "info", "moderation"]
