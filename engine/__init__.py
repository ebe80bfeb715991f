"""EfficientNet Studio engine: all data and ML logic, no UI.

Public API: import from the modules (``engine.workspace``, ``engine.importing``, ...).
Nothing in this package imports streamlit or prints (except ``engine/cli``).
"""
from engine.errors import EngineError
from engine.workspace import Workspace, open_workspace

__all__ = ["EngineError", "Workspace", "open_workspace"]
