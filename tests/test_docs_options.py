"""The options reference (docs/reference/options.md, generated at build time) lists every key of every config
file with its description, and every key has one: a comment on its line or the comment block directly above it."""

from pathlib import Path

from omegaconf import OmegaConf

from scripts import options_reference as ref

ROOT = Path(__file__).resolve().parent.parent


def test_every_yaml_key_has_a_description():
    gaps = [f"configs/{o.file}:{o.line}: {o.key}" for o in ref.missing()]
    assert not gaps, "keys without a one-line comment (on their line or directly above):\n" + "\n".join(gaps)


def test_reference_lists_every_option_of_every_config_group():
    text = ref.markdown()
    files = ref.config_files()
    assert len(files) == len(list((ROOT / "configs").rglob("*.yaml")))
    for path in files:
        rel = path.relative_to(ref.CONFIGS).as_posix()
        assert f"### {rel}" in text
        header, options = ref.file_options(path)
        assert options, rel
        section = text.split(f"### {rel}\n", 1)[1].split("\n### ", 1)[0]
        for o in options:
            assert f"| `{ref.cell(o.key)}` |" in section, (rel, o.key)


def test_parser_finds_every_key_omegaconf_loads():
    """The line parser sees the same keys as OmegaConf (so no option escapes the reference)."""
    def keys(node, prefix=""):
        for k, v in node.items():
            dotted = f"{prefix}{k}"
            yield dotted
            if isinstance(v, dict):
                yield from keys(v, dotted + ".")

    for path in ref.config_files():
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        expected = set(keys(loaded)) if isinstance(loaded, dict) else set()
        options = {o.key: o for o in ref.file_options(path)[1]}
        # entries of a flow mapping ({qed: qed}) belong to their key's line and its comment
        expected = {k for k in expected if "." not in k or options.get(k.rsplit(".", 1)[0]) is None
                    or options[k.rsplit(".", 1)[0]].default == ""}
        parsed = set(options)
        assert expected == parsed, (path, expected ^ parsed)


def test_a_key_without_a_comment_is_caught(tmp_path):
    config = tmp_path / "example.yaml"
    config.write_text("# the file\n\nfirst: 1  # described on its line\n# described above\nsecond: 2\n"
                      "node:\n  third: 3\n_target_: x.Y\n")
    assert [o.key for o in ref.missing([config])] == ["node", "node.third"]
    header, options = ref.file_options(config)
    assert header == "the file"
    assert {o.key: o.description for o in options}["second"] == "described above"
