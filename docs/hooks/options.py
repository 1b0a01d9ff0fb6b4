"""MkDocs hook: reference/options.md is generated from the YAML comments at build time
(scripts/options_reference.py), so the options reference cannot fall behind configs/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]


def _reference_module():
    spec = importlib.util.spec_from_file_location("options_reference", ROOT / "scripts" / "options_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["options_reference"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def on_files(files, config):
    files.append(File.generated(config, "reference/options.md", content=_reference_module().markdown()))
    return files
