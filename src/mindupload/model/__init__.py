"""The base model (rule embedded_model): its tokenizer as every later stage counts and renders with it, and
the embedded demo model."""
