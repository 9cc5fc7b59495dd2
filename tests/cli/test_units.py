"""Pure logic of the CLI, in process: secret paths and masking, files, option precedence."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import typer

from configsvc.cli import _main as cli_main
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


def test_the_token_resolves_flag_then_data_dir_flag_then_environment(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "admin.token").write_text("t-served\n")
    env = {"CONFIGSVC_TOKEN": "t-env", "CONFIGSVC_DATA_DIR": str(tmp_path / "default")}
    assert resolve(GlobalFlags(token="t-flag", data_dir=served), env).token == "t-flag"
    from_dir = resolve(GlobalFlags(data_dir=served), env)
    assert (from_dir.token, from_dir.token_source) == ("t-served", str(served / "admin.token"))
    assert resolve(GlobalFlags(), env).token == "t-env"
    # the flag before the command's name counts as well, the one after it wins
    merged = GlobalFlags(url="http://after").over(GlobalFlags(data_dir=served))
    assert resolve(merged, env).token == "t-served"


def test_a_missing_admin_token_says_why(tmp_path: Path) -> None:
    target = resolve(GlobalFlags(data_dir=tmp_path))
    assert target.token is None and target.token_file is not None
    assert (target.token_file.path, target.token_file.problem) == (
        tmp_path / "admin.token",
        "does not exist",
    )
    assert target.url_source == "default"
    (tmp_path / "admin.token").write_text("\n")
    empty = resolve(GlobalFlags(data_dir=tmp_path)).token_file
    assert empty is not None and empty.problem == "is empty"
    assert resolve(GlobalFlags(url="http://x")).url_source == "--url"
    assert resolve(GlobalFlags(), {"CONFIGSVC_URL": "http://y"}).url_source == "CONFIGSVC_URL"


def test_stdin_documents_yaml_json_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from configsvc.cli._files import STDIN

    docs = "namespace: a\nname: x\n---\nnamespace: a\nname: y\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(docs))
    assert [(d.where, d.body["name"]) for d in load_file(STDIN)] == [
        ("<stdin>:1", "x"),
        ("<stdin>:4", "y"),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO('[{"name": "x"}, {"name": "y"}]'))
    assert [d.body["name"] for d in load_file(STDIN)] == ["x", "y"]
    monkeypatch.setattr("sys.stdin", io.StringIO("{name: flow-style}"))
    assert [d.body["name"] for d in load_file(STDIN)] == ["flow-style"]
    monkeypatch.setattr("sys.stdin", io.StringIO("[1, 2]"))
    with pytest.raises(FileError, match="expected one document"):
        load_file(STDIN)


def test_an_os_error_names_its_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk or a missing folder met anywhere: one line naming the file, no traceback."""

    def full_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/etcd/member/wal/0.tmp")

    broken = typer.Typer()
    broken.command()(full_disk)
    monkeypatch.setattr(cli_main, "build_app", lambda: broken)
    monkeypatch.delenv(cli_main.DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        cli_main.main([])
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "error: /data/etcd/member/wal/0.tmp: No space left on device "
        f"(set {cli_main.DEBUG_ENV}=1 for details)\n"
    )
