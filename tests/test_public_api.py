"""The engine's public API: every re-exported name resolves, and `import engine` is light."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves():
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


def test_import_engine_does_not_load_tensorflow_or_streamlit():
    code = ("import sys, engine; engine.open_workspace; "
            "print(sorted(m for m in ('tensorflow', 'streamlit', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
