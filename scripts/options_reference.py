"""The options reference of the docs, generated from the YAML comments of configs/**/*.yaml.

    python scripts/options_reference.py            # print docs/reference/options.md's text
    python scripts/options_reference.py --missing  # list the keys that have no description (exit 1 if any)

Every key of every config file is an option; its description is the comment on its line or the block of comment
lines directly above it (a file's first comment block describes the file, and its first key too when no
blank line parts them). Hydra's own keys
(defaults, _target_, the hydra: node) are listed with what Hydra does with them, not described in the YAMLs.
The docs build runs this through docs/hooks/options.py, so the page cannot fall behind the configs;
tests/test_docs_options.py fails when a key has no description.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
# Keys Hydra itself reads: described here once rather than in every file.
HYDRA_KEYS = {
    "defaults": "Hydra's defaults list: the config files this one is composed from.",
    "_target_": "the class (or function) Hydra's instantiate builds from this node.",
    "_recursive_": "whether Hydra instantiates the nested nodes too.",
    "_convert_": "how Hydra converts nested configs passed to the class.",
    "_partial_": "build a functools.partial instead of calling the target.",
}
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w\-]*|'[^']*'|\"[^\"]*\")\s*:(?P<rest>.*)$")


@dataclass
class Option:
    file: str          # relative to configs/, e.g. decoder/svdd_pm.yaml
    key: str           # dotted path inside the file, e.g. decoder.num_candidates
    default: str       # the value as written ("" for a node with keys under it)
    description: str   # "" when the YAML has no comment for it
    line: int

    @property
    def hydra_key(self) -> bool:
        last = self.key.rsplit(".", 1)[-1]
        return last in HYDRA_KEYS or self.key == "hydra" or self.key.startswith("hydra.")


def split_comment(text: str) -> tuple[str, str]:
    """Split `value  # comment` outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].strip(), text[i + 1:].strip()
    return text.strip(), ""


def file_options(path: Path) -> tuple[str, list[Option]]:
    """(the file's header comment, its options in order)."""
    rel = path.relative_to(CONFIGS).as_posix() if path.is_relative_to(CONFIGS) else path.name
    lines = path.read_text().splitlines()
    header: list[str] = []
    seen_key = False
    block: list[str] = []
    stack: list[tuple[int, str]] = []   # (indent, key)
    options: list[Option] = []
    in_list_of = None                    # indent of a key whose value is a block list (defaults)
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped:
            block = []
            continue
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if text.startswith("@package"):
                continue
            if not seen_key:
                header.append(text)
            block.append(text)
            continue
        indent = len(raw) - len(raw.lstrip())
        if stripped.startswith("- "):
            block = []
            continue
        if in_list_of is not None and indent > in_list_of:
            block = []
            continue
        in_list_of = None
        match = KEY_LINE.match(raw)
        if not match:
            block = []
            continue
        # A file's header describes the file, and also its first key when no blank line parts them.
        seen_key = True
        key = match["key"].strip("'\"")
        value, comment = split_comment(match["rest"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        description = " ".join([comment] if comment else block)
        options.append(Option(file=rel, key=dotted, default=value, description=description, line=number))
        if value == "":
            stack.append((indent, key))
            if key == "defaults":
                in_list_of = indent
        block = []
    return " ".join(header), options


def config_files() -> list[Path]:
    files = sorted(CONFIGS.rglob("*.yaml"))
    top = [p for p in files if p.parent == CONFIGS]
    return top + [p for p in files if p.parent != CONFIGS]


def missing(paths: list[Path] | None = None) -> list[Option]:
    """The keys (Hydra's own left out) that have no description."""
    return [o for path in (paths or config_files()) for o in file_options(path)[1]
            if not o.hydra_key and not o.description]


def escape(text: str) -> str:
    """Markdown text that shows square brackets as written (not as reference links)."""
    return text.replace("[", "\\[").replace("]", "\\]")


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    out = ["# Options reference", "",
           "Every option of every config file, generated from the comments of `configs/**/*.yaml` when the site is "
           "built (`scripts/options_reference.py`, run by `docs/hooks/options.py`), so it cannot fall behind them. "
           "Set an option on the command line as `key=value` (`decoder.num_candidates=4`); a file of a group is "
           "chosen with `group=name` (`decoder=smc`). Keys are shown as the file writes them: a file under "
           "`decoder/` with `# @package _global_` writes `decoder.KEY`, `reward/` files are placed under `reward.`, "
           "`decoder/shared/common.yaml` under `decoder.` and `reward/shared/combination.yaml` under `reward.`.", "",
           "Hydra's own keys, in every group:", "",
           *(f"- `{k}`: {v}" for k, v in HYDRA_KEYS.items()), ""]
    groups: dict[str, list[Path]] = {}
    for path in config_files():
        rel = path.relative_to(CONFIGS)
        group = "top level: decode.yaml and train.yaml" if len(rel.parts) == 1 else rel.parts[0]
        groups.setdefault(group, []).append(path)
    for group, paths in groups.items():
        title = group if group.startswith("top") else f"`{group}=` group"
        out += [f"## {title}", ""]
        if not group.startswith("top"):
            names = [p.stem for p in paths if p.parent.name == group]
            out += ["Choices: " + ", ".join(f"`{group}={n}`" for n in names) + ".", ""]
        for path in paths:
            rel = path.relative_to(CONFIGS).as_posix()
            header, options = file_options(path)
            out += [f"### {rel}", ""]
            if header:
                out += [escape(header), ""]
            out += ["| option | default | meaning |", "|---|---|---|"]
            for o in options:
                if o.key == "hydra" or o.key.startswith("hydra."):
                    meaning = o.description or "Hydra's own run settings (see the file)."
                elif o.hydra_key:
                    meaning = HYDRA_KEYS[o.key.rsplit(".", 1)[-1]]
                else:
                    meaning = o.description
                default = f"`{cell(o.default)}`" if o.default else "(node)"
                out.append(f"| `{cell(o.key)}` | {default} | {cell(escape(meaning))} |")
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if "--missing" in sys.argv:
        gaps = missing()
        for o in gaps:
            print(f"configs/{o.file}:{o.line}: {o.key}")
        print(f"{len(gaps)} keys without a description", file=sys.stderr)
        sys.exit(1 if gaps else 0)
    print(markdown())
