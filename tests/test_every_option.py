"""Every option of decode.py and train.py, tried wrong (svdd_lightning/options.py).

The composed configs of both entry points are walked with every group's defaults (each decoder, each domain,
each training stage). Every leaf must be declared (a typed constructor parameter, or a key of the entry point's
table), and for each declared scalar option a value of the wrong type and, where a range is declared, a value
just outside it are tried through the entry point's own main (``decode.main`` / ``train.main`` under their
error handler, in this process: composition and the option check run, nothing is built). Each must exit 2 with
one ``error:`` line that names the option by its full key and what it takes, and leave no output_dir behind.
The four commands of issue 23's table also run as a user types them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from svdd_lightning.options import ENTRY_OPTIONS, conforms, describe, ranges_of, scalar_kind, walk
from tests.helpers import ROOT

DOMAINS = ["dna", "rna", "molecule", "image", "latent_image", "antibody", "ehrlich"]
DECODERS = ["pretrained", "best_of_n", "svdd_pm", "svdd_mc", "smc", "dps", "svdd_r", "beam", "svdd_smc", "tree", "tree_search"]
COMPOSITIONS = ([("decode", [f"decoder={d}"]) for d in DECODERS] + [("decode", [f"domain={d}"]) for d in DOMAINS]
                + [("train", [f"domain={d}", f"stage={s}"]) for d in DOMAINS for s in ("pretrain", "value", "oracle")])


def composed(entry: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(entry, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def wrong_values(annotation) -> list:
    """A value of the wrong type and values just outside each declared range, each refused by the declaration."""
    kinds = scalar_kind(annotation)
    tries: list = []
    if "str" not in kinds:
        tries.append("abc")  # what a typo on the command line gives
        if "int" in kinds and "float" not in kinds:
            tries.append(2.5)
        if kinds == {"bool"}:
            tries.append(3)
    for bound, whole in ranges_of(annotation):
        tries.extend(bound.outside(whole))
    unique = {repr(v): v for v in tries}.values()
    return [v for v in unique if not conforms(v, annotation)]


@pytest.fixture(scope="module")
def options():
    """{(entry, key): (overrides of the first composition holding it, option)}, every leaf of every composition."""
    found = {}
    for entry, overrides in COMPOSITIONS:
        for option in walk(composed(entry, overrides), ENTRY_OPTIONS[entry]):
            found.setdefault((entry, option.key), (overrides, option))
    return found


def test_every_leaf_is_declared(options):
    undeclared = [f"{entry} {key} (in {option.owner})" for (entry, key), (_, option) in options.items()
                  if option.annotation is None]
    assert not undeclared, "options with no declared type: " + ", ".join(undeclared)
    assert len({key for _, key in options}) > 150  # the walk really reached the groups' nodes


def test_the_shipped_defaults_are_accepted(options):
    from svdd_lightning.options import problem

    refused = [problem(option) for _, option in options.values() if problem(option)]
    assert not refused


def test_every_option_tried_wrong_gives_one_named_error(options, tmp_path, capsys):
    import decode
    import train

    mains = {"decode": decode.main.__wrapped__, "train": train.main.__wrapped__}  # under friendly_errors
    tried = 0
    failures = []
    by_first = {}
    for (entry, key), (overrides, option) in options.items():
        by_first.setdefault((entry, tuple(overrides)), []).append(option)
    for (entry, overrides), group in by_first.items():
        base = composed(entry, list(overrides))
        for option in group:
            for value in wrong_values(option.annotation):
                cfg = base.copy()
                out = tmp_path / f"run-{tried}"
                with open_dict(cfg):
                    OmegaConf.update(cfg, key=option.key, value=value, merge=False, force_add=True)
                    cfg.output_dir = str(out)
                with pytest.raises(SystemExit) as stop:
                    mains[entry](cfg)
                err = capsys.readouterr().err.strip().splitlines()
                tried += 1
                shown = f"{option.key}={value}"
                if stop.value.code != 2 or len(err) != 1 or not err[0].startswith(f"error: {shown} ") \
                        or describe(option.annotation) not in err[0] or out.exists():
                    failures.append(f"{entry} {shown}: exit {stop.value.code}, {err[-3:]}, output left: {out.exists()}")
    print(f"\nevery-option test: {len(options)} options, {tried} wrong values tried")
    assert not failures, "\n".join(failures[:20])
    assert tried > 200


def test_a_key_the_constructor_does_not_take_is_named(tmp_path, capsys):
    import decode

    cfg = composed("decode", [])
    with open_dict(cfg):
        cfg.decoder.temperature = 2.0
        cfg.output_dir = str(tmp_path / "out")
    with pytest.raises(SystemExit) as stop:
        decode.main.__wrapped__(cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: decoder.temperature is not an option of SVDD") and "num_candidates" in err[0]


# The commands of the issue, as a user types them: one `error:` line naming the option, exit 2, nothing written.
COMMANDS = [
    ("decode.py", ["decoder=svdd_pm", "decoder.alpha=-1"], "decoder.alpha=-1"),
    ("decode.py", ["decoder.num_candidates=0"], "decoder.num_candidates=0"),
    ("decode.py", ["decoder.max_batch=-5"], "decoder.max_batch=-5"),
    ("decode.py", ["seed=abc"], "seed=abc"),
    ("train.py", ["stage=pretrain", "trainer.max_steps=-1"], "trainer.max_steps=-1"),
    ("train.py", ["stage=value", "value_training.num_rollouts=0"], "value_training.num_rollouts=0"),
]


@pytest.mark.parametrize("script, args, shown", COMMANDS)
def test_the_issue_commands_composed_as_typed(script, args, shown, tmp_path, capsys):
    """Hydra parses the overrides as the command line does (compose), then the entry point's main runs."""
    import decode
    import train

    entry = script.removesuffix(".py")
    cfg = composed(entry, [*args, f"output_dir={tmp_path / 'out'}", "logger=none"])
    with pytest.raises(SystemExit) as stop:
        {"decode": decode.main, "train": train.main}[entry].__wrapped__(cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {shown} is not accepted: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("commands", [[COMMANDS[3], COMMANDS[4]],
                                      pytest.param(COMMANDS, marks=pytest.mark.slow, id="all")],
                         ids=["decode-and-train", "all"])
def test_the_issue_commands_as_a_user_runs_them(commands, tmp_path):
    procs = []
    for k, (script, args, _) in enumerate(commands):  # all at once: each is mostly interpreter start-up
        out = tmp_path / f"out-{k}"
        procs.append((out, subprocess.Popen([sys.executable, script, *args, f"output_dir={out}", "logger=none"],
                                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})))
    for (out, proc), (script, args, shown) in zip(procs, commands):
        _, err = proc.communicate(timeout=300)
        lines = [line for line in err.splitlines() if line.strip()]
        assert proc.returncode == 2, (script, args, err[-2000:])
        assert len(lines) == 1 and lines[0].startswith(f"error: {shown} is not accepted: "), (script, args, err)
        assert not Path(out).exists()
