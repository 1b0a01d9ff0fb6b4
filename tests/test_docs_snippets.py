"""The Python snippets of the tutorials run, and the results pages are what the result files give.

A fenced ```python block preceded by the line `<!-- snippet: run -->` is run, in the order of the pages and of
the blocks in them, in one namespace per page, from the repository root. A block whose first line is a comment
`# NAME.py ...` is also written to NAME.py in a folder put on sys.path, so later snippets can import it (as
the tutorials tell users to). TINY shrinks the sizes the docs show so that the snippets take seconds; each
replacement must apply somewhere, so a snippet that changes shape shows here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- snippet: run -->"
ORDER = ["own-reward.md", "python.md"]  # pages with snippets, first those that others import from
TINY = {
    "num_samples=16": "num_samples=2",
    'load_diffusion("checkpoints/dna/pretrained.ckpt")': 'load_diffusion("checkpoints/dna/pretrained.ckpt", num_steps=3)',
    '"num_candidates": 10': '"num_candidates": 2',
}


def snippets() -> list[tuple[str, str]]:
    found = []
    pages = sorted((ROOT / "docs").rglob("*.md"), key=lambda p: (p.name not in ORDER, ORDER.index(p.name)
                                                                   if p.name in ORDER else 0, str(p)))
    for page in pages:
        text = page.read_text()
        for match in re.finditer(re.escape(MARK) + r"\n```python\n(.*?)\n```", text, re.S):
            found.append((page.relative_to(ROOT).as_posix(), match[1]))
    return found


def test_marked_snippets_run(tmp_path, monkeypatch):
    found = snippets()
    assert len(found) >= 2, "no marked snippets found"
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(tmp_path))
    used = set()
    namespaces: dict[str, dict] = {}
    for page, code in found:
        for big, small in TINY.items():
            if big in code:
                code = code.replace(big, small)
                used.add(big)
        first = code.splitlines()[0]
        module = re.match(r"#\s*(\w+)\.py\b", first)
        if module:
            (tmp_path / f"{module[1]}.py").write_text(code + "\n")
        namespace = namespaces.setdefault(page, {"__name__": "__snippet__"})
        try:
            exec(compile(code, f"{page} (snippet)", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - name the page in the failure
            raise AssertionError(f"the snippet of {page} fails: {exc!r}\n{code}") from exc
    sys.modules.pop("my_rewards", None)
    assert used == set(TINY), f"TINY replacements that no snippet uses any more: {set(TINY) - used}"
    result = namespaces["docs/tutorials/python.md"]["result"]
    assert len(result.texts) == 2 and len(result.rewards) == 2
    assert result.summary["calls"]["asked"]["denoiser"] > 0


@pytest.mark.parametrize("name", ["results_pages.py"])
def test_results_pages_are_current(name):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / name), "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
