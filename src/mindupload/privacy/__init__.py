"""Privacy (rules redact, forget): personal data replaced with typed placeholders, and `forget`, which
deletes everything derived from the chats."""
