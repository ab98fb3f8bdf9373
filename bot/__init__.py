"""The chat bot: one platform-neutral command core and thin per-platform adapters."""
