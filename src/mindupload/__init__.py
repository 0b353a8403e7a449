"""mind-upload: turn your own chat history into a language model that talks like you."""

__version__ = "0.1.0"
