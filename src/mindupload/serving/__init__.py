"""Serving (rule serve): generation with the trained adapter and the Gradio chat page."""
