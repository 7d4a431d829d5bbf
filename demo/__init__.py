"""The Gradio page (layout and wiring only); everything it shows comes from `core`."""
from .ui import build_demo

__all__ = ["build_demo"]
