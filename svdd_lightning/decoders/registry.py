"""Decoders by name, for the Python API: the files of the ``decoder`` config group, the same files decode.py and
benchmark.py compose (configs/decoder/NAME.yaml, then the ``decoder/`` folder of each directory of a search path,
as ``hydra.searchpath`` adds it on the command line). A new decoder is one module and one such file; nothing here
lists decoders.

From a file the API reads what it cannot take from the caller: the class (``decoder._target_``) and the value
group the file selects (``override /value: posterior_mean | learned | none`` in its defaults). The file's option
values are the command line's defaults, some tied to the domain (SMC's alpha is the domain's reward scale); the API
takes options from ``decoder_options`` and the constructor's own defaults otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from svdd_lightning.errors import ConfigError
from svdd_lightning.paths import CONFIG_DIR


@dataclass(frozen=True)
class DecoderEntry:
    name: str
    target: str  # the class, by import path
    value: str | None  # the value group option the file selects (posterior_mean, learned), None: none
    path: Path


def search_dirs(search_path: Sequence[str | Path] = ()) -> list[Path]:
    """The config directories, the library's first (as in Hydra, where the primary config path comes before
    hydra.searchpath); ``file://`` prefixes are accepted as on the command line."""
    extra = [Path(str(d).removeprefix("file://")).expanduser() for d in search_path]
    return [CONFIG_DIR, *extra]


def decoder_files(search_path: Sequence[str | Path] = ()) -> dict[str, Path]:
    """{name: file} of every decoder config on the search path (the first of a name wins)."""
    files: dict[str, Path] = {}
    for directory in search_dirs(search_path):
        for path in sorted((directory / "decoder").glob("*.yaml")):
            files.setdefault(path.stem, path)
    return files


def selected_value(defaults: list) -> str | None:
    """The value group option a decoder file's defaults list selects (``override /value: NAME``); none: decode.yaml's
    own default, value=none."""
    for entry in defaults or []:
        if isinstance(entry, dict):
            for key, option in entry.items():
                if key.split()[-1].strip("/") == "value":
                    return None if option in (None, "none") else str(option)
    return None


def decoder_entry(name: str, search_path: Sequence[str | Path] = ()) -> DecoderEntry:
    """The decoder called ``name`` in the config group, or a ConfigError listing the names there are."""
    files = decoder_files(search_path)
    if name not in files:
        where = ", ".join(str(d / "decoder") for d in search_dirs(search_path))
        raise ConfigError(f"decoder={name!r} is unknown; use one of {', '.join(files)} (the files of {where}), add "
                          f"your own NAME.yaml to a folder passed as search_path=, or pass a Decoder instance.")
    node = OmegaConf.to_container(OmegaConf.load(files[name]), resolve=False)
    target = (node.get("decoder") or {}).get("_target_")
    if not target:
        raise ConfigError(f"{files[name]} has no decoder._target_; a decoder config names its class there, e.g. "
                          f"decoder: {{_target_: my_package.MyDecoder}}.")
    return DecoderEntry(name=name, target=str(target), value=selected_value(node.get("defaults")), path=files[name])
