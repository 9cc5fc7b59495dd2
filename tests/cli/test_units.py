"""Pure logic of the CLI, in process: secret paths and masking, files, option precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from configsvc.cli._errors import FileError
from configsvc.cli._files import find_files, load_file
from configsvc.cli._options import GlobalFlags, OutputFormat, resolve
from configsvc.cli._secrets import MASK, SecretMasker, Shown, secret_paths
from configsvc.registry import KindRegistry


@pytest.fixture
def masker() -> SecretMasker:
    registry = KindRegistry()
    return SecretMasker(
        lambda: {name: registry.get(name).json_schema() for name in registry.names()}
    )


def spec(**keys: str | None) -> dict[str, Any]:
    endpoints = {
        name: {"base_url": "http://x", "model": "m", "api_key": key} for name, key in keys.items()
    }
    return {"default": next(iter(keys)), "endpoints": endpoints}


def test_secret_paths_follow_refs_maps_and_unions() -> None:
    schema = KindRegistry().get("ModelEndpoints").json_schema()
    assert secret_paths(schema) == (("endpoints", "*", "api_key"),)
    assert secret_paths(KindRegistry().get("RateLimits").json_schema()) == ()


def test_mask(masker: SecretMasker) -> None:
    original = spec(a="sk-1", b=None)
    masked = masker.mask("ModelEndpoints", original)
    assert masked["endpoints"]["a"]["api_key"] == MASK
    assert masked["endpoints"]["b"]["api_key"] is None
    assert original["endpoints"]["a"]["api_key"] == "sk-1"  # a copy
    # an unknown kind is masked by the secret field names of every kind
    assert masker.mask("Other", {"x": {"api_key": "k"}}) == {"x": {"api_key": MASK}}


def test_mask_pair_marks_changes_without_values(masker: SecretMasker) -> None:
    old = ("ModelEndpoints", spec(same="s", changed="c1", kept="k", hidden=MASK, gone="g"))
    new = ("ModelEndpoints", spec(same="s", changed="c2", kept=MASK, hidden="h", added="n"))
    old_spec, new_spec = masker.mask_pair(old, new)
    shown = {name: e["api_key"] for name, e in new_spec["endpoints"].items()}
    assert shown == {
        "same": Shown.SAME,
        "changed": Shown.CHANGED,
        "kept": Shown.SAME,  # `****` written back keeps the stored value
        "hidden": Shown.UNKNOWN,  # the token could not read the old value
        "added": Shown.SAME,
    }
    assert {e["api_key"] for e in old_spec["endpoints"].values()} == {Shown.SAME}
    assert masker.mask_pair(None, new)[0] is None


def test_yaml_documents_keep_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "# head\nnamespace: p\nname: a\n---\n---\nnamespace: p\nname: b\nt: 2026-01-01\n"
    )
    documents = load_file(path)
    assert [(d.line, str(d.ref())) for d in documents] == [(2, "p/a"), (6, "p/b")]
    assert documents[1].body["t"] == "2026-01-01"  # not a date object
    path.write_text("a: 1\n b: 2\n")
    with pytest.raises(FileError) as caught:
        load_file(path)
    assert caught.value.line == 2


def test_find_files_skips_hidden_and_other_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.json", "sub/c.yml", ".git/x.yaml", ".d.yaml", "n.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found = [p.relative_to(tmp_path).as_posix() for p in find_files(tmp_path)]
    assert found == ["a.json", "b.yaml", "sub/c.yml"]


def test_flags_after_the_name_win_then_before_then_environment(tmp_path: Path) -> None:
    before = GlobalFlags(url="http://before", token="t-before", output=OutputFormat.YAML)
    after = GlobalFlags(url="http://after")
    merged = after.over(before)
    assert (merged.url, merged.token, merged.output) == ("http://after", "t-before", "yaml")
    env = {"CONFIGSVC_URL": "http://env", "CONFIGSVC_TOKEN": "t-env"}
    assert resolve(GlobalFlags(), env).url == "http://env"
    assert resolve(GlobalFlags(), env).token_source == "CONFIGSVC_TOKEN"
    (tmp_path / "admin.token").write_text("t-file\n")
    target = resolve(GlobalFlags(), {"CONFIGSVC_DATA_DIR": str(tmp_path)})
    assert (target.url, target.token, target.output) == ("http://127.0.0.1:8080", "t-file", "table")
