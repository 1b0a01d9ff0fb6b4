"""Every `python decode.py ...`, `python train.py ...` and `python benchmark.py ...` line of README.md and
docs/**/*.md still means something: decode/train lines are composed by Hydra on the shipped configs (nothing is
decoded) and checked by svdd_lightning.options.check_config; benchmark lines are parsed by benchmark.py's own
parser. An option renamed in the code fails here.

Placeholders the docs may write, and the values substituted for them (whole words in capitals only):
PLACEHOLDERS below (CHOICES for a group: decoder=NAME is decoder=svdd_pm). A synopsis argument `[key=a|b|c]` is checked with its first choice.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from svdd_lightning.options import check_config
from svdd_lightning.paths import CONFIG_DIR

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDERS = {"DIR": "outputs/docs-check", "PATH": "outputs/docs-check/model.ckpt", "FILE": "outputs/docs-check/x.fa",
                "N": "2", "K": "2", "B": "2", "S": "0.2", "A": "0.5", "D": "dna", "R": "hepg2_motif",
                "X": "svdd_pm", "VALUE": "0.0", "NAME": "gc", "PID": "1"}
CHOICES = {"decoder": "svdd_pm", "domain": "dna", "reward": "gc", "stage": "pretrain"}
SCRIPTS = ("decode.py", "train.py", "benchmark.py")
LINE = re.compile(r"^\s*(?:#\s*)?python (decode|train|benchmark)\.py\b")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def commands() -> list[tuple[str, str]]:
    """(where, command) for every command line of the docs, continuation lines joined."""
    found = []
    for path in doc_files():
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text().splitlines()
        in_code = False
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.strip().startswith("```"):
                in_code = not in_code
            elif in_code and LINE.match(line):
                text = line.split("#", 1)[0] if not line.lstrip().startswith("#") else line
                while text.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].strip()
                found.append((f"{rel}:{i + 1}", text.strip()))
            elif not in_code:
                for span in re.findall(r"`(python (?:decode|train|benchmark)\.py[^`]*)`", line):
                    found.append((f"{rel}:{i + 1}", span))
            i += 1
    return found


def arguments(command: str) -> tuple[str, list[str]]:
    command = command.replace("$PWD", str(ROOT))
    words = shlex.split(command.split(" # ")[0])
    script = words[1].removesuffix(".py")
    args = []
    for word in words[2:]:
        if word.startswith("[") and word.endswith("]") and "=" in word and not word[1:].startswith("file:"):
            word = word[1:-1].split("|")[0]        # a synopsis argument: its first choice
        if word == "...":
            continue
        if "=" in word and "|" in word and not word.startswith(("[", "'")):
            key, value = word.split("=", 1)
            word = f"{key}={value.split('|')[0]}"   # prose alternatives, stage=value|oracle: the first
        key, _, value = word.partition("=")
        if key in CHOICES and re.fullmatch(r"[A-Z]{1,5}", value):
            word = f"{key}={CHOICES[key]}"          # decoder=NAME, domain=D, reward=R: a choice of that group
        word = re.sub(r"\b([A-Z]{1,5})\b", lambda m: PLACEHOLDERS.get(m[1], m[1]), word)
        if "=" in word and " " in word.split("=", 1)[1]:
            key, value = word.split("=", 1)
            word = f"{key}='{value}'"
        args.append(word)
    return script, args


def compose_entry(script: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(script, overrides=overrides)


COMMANDS = commands()


def test_the_docs_have_commands():
    scripts = {arguments(c)[0] for _, c in COMMANDS}
    assert scripts == {"decode", "train", "benchmark"}, scripts
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("where,command", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_composes(where, command):
    script, args = arguments(command)
    if "--help" in args:
        return
    if script == "benchmark":
        from svdd_lightning.tasks.benchmark import build_parser
        from svdd_lightning.tasks.benchmark_plan import ALL_TASKS, known_decoders

        parsed = build_parser().parse_args(args)
        assert parsed.decoders and set(parsed.decoders) <= set(known_decoders(
            [str(ROOT / p) for p in parsed.search_path])), (where, parsed.decoders)
        known = {f"{d}/{r}" for d, r in ALL_TASKS}
        assert not parsed.tasks or set(parsed.tasks) <= known, (where, parsed.tasks)
        return
    overrides = [a for a in args if not a.startswith("-")]
    try:
        cfg = compose_entry(script, overrides)
    except Exception as exc:  # noqa: BLE001 - name the docs line in the failure
        raise AssertionError(f"{where}: `{command}` does not compose: {exc}") from exc
    if "reward._target_=" in command or "hydra.searchpath" in command:
        return  # a user's own function or config (tests/ covers them); check_config would import it
    if any(a.startswith(("stage=", "domain=")) for a in overrides) or script == "decode":
        check_config(cfg, entry=script)
