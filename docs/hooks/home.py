"""MkDocs hook: the site's home page is the README, generated at build time with its links made relative to docs/
(``](docs/x.md)`` -> ``](x.md)``), so the front door and the home page cannot drift apart."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]


def home_markdown() -> str:
    return (ROOT / "README.md").read_text().replace("](docs/", "](")


def on_files(files, config):
    files.append(File.generated(config, "index.md", content=home_markdown()))
    return files
