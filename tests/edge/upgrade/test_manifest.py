"""Signed manifests: a release verifies; any change to a file, the manifest or the key is refused with
its reason, before anything is installed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from contract.release import (
    FILES_DIR,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ReleaseError,
    load_private_key,
    load_public_key,
    parse_signed,
    verify_files,
)
from tests.edge.upgrade.releases import make_release, wheel_dir
from yiwang.cli import app
from yiwang.cli.release import add_release

KEY = Ed25519PrivateKey.generate()


def _check(release: Path, key: Ed25519PrivateKey = KEY) -> None:
    manifest = parse_signed(
        (release / MANIFEST_NAME).read_bytes(), (release / SIGNATURE_NAME).read_bytes(), key.public_key()
    )
    verify_files(release / FILES_DIR, manifest)


def test_a_signed_release_verifies(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", KEY, tmp_path)
    _check(release)
    manifest = parse_signed(
        (release / MANIFEST_NAME).read_bytes(), (release / SIGNATURE_NAME).read_bytes(), KEY.public_key()
    )
    assert manifest.version == "0.2.0"
    assert [f.name for f in manifest.files] == [
        "paho_mqtt-2.2.0-py3-none-any.whl",
        "yiwang-0.2.0-py3-none-any.whl",
    ]


def test_a_changed_byte_in_a_wheel_is_refused(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", KEY, tmp_path)
    wheel = release / FILES_DIR / "yiwang-0.2.0-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    data[1000] ^= 0x01
    wheel.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match=r"yiwang-0.2.0-py3-none-any.whl does not match its SHA-256"):
        _check(release)


def test_a_wheel_of_another_size_is_refused_before_hashing(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", KEY, tmp_path)
    with (release / FILES_DIR / "yiwang-0.2.0-py3-none-any.whl").open("ab") as wheel:
        wheel.write(b"x")
    with pytest.raises(ReleaseError, match=r"is 60001 bytes, the manifest says 60000"):
        _check(release)


def test_a_changed_manifest_is_refused(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", KEY, tmp_path)
    manifest = release / MANIFEST_NAME
    manifest.write_bytes(manifest.read_bytes().replace(b'"0.2.0"', b'"0.2.1"'))
    with pytest.raises(ReleaseError, match="signature does not verify"):
        _check(release)


def test_a_release_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", Ed25519PrivateKey.generate(), tmp_path)
    with pytest.raises(ReleaseError, match="signature does not verify"):
        _check(release)


def test_an_extra_file_is_refused(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", KEY, tmp_path)
    (release / FILES_DIR / "evil-1.0-py3-none-any.whl").write_bytes(b"not signed")
    with pytest.raises(ReleaseError, match=r"not in the manifest: evil-1.0-py3-none-any.whl"):
        _check(release)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    release = make_release(tmp_path / "store", "0.2.0", KEY, tmp_path)
    (release / FILES_DIR / "paho_mqtt-2.2.0-py3-none-any.whl").unlink()
    with pytest.raises(ReleaseError, match=r"paho_mqtt-2.2.0-py3-none-any.whl is missing"):
        _check(release)


def test_an_oversized_manifest_or_signature_is_refused_before_verifying() -> None:
    with pytest.raises(ReleaseError, match="manifest is 300000 bytes"):
        parse_signed(b"{" * 300_000, b"s" * 64, KEY.public_key())
    with pytest.raises(ReleaseError, match="signature is 65 bytes"):
        parse_signed(b"{}", b"s" * 65, KEY.public_key())


def test_a_validly_signed_but_malformed_manifest_is_refused() -> None:
    data = b'{"format": 1, "version": "../../etc", "files": []}'
    with pytest.raises(ReleaseError, match=r"malformed: .*version"):
        parse_signed(data, KEY.sign(data), KEY.public_key())


def test_release_add_refuses_what_is_not_a_release(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with pytest.raises(ReleaseError, match="no wheels"):
        add_release(tmp_path / "nothing", KEY, store)
    no_agent = tmp_path / "deps"
    no_agent.mkdir()
    (no_agent / "paho_mqtt-2.2.0-py3-none-any.whl").write_bytes(b"x")
    with pytest.raises(ReleaseError, match=r"exactly one yiwang-<version>-\*.whl, found 0"):
        add_release(no_agent, KEY, store)
    stray = wheel_dir(tmp_path / "stray", "0.3.0")
    (stray / "notes.txt").write_text("hi")
    with pytest.raises(ReleaseError, match=r"only wheels are released; remove notes\.txt"):
        add_release(stray, KEY, store)
    make_release(store, "0.2.0", KEY, tmp_path)
    with pytest.raises(ReleaseError, match="already stored"):
        add_release(tmp_path / "dist-0.2.0", KEY, store)


def test_keygen_and_add_on_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "keys" / "release.pem"
    result = runner.invoke(app, ["release", "keygen", "--key", str(key)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    again = runner.invoke(app, ["release", "keygen", "--key", str(key)])
    assert again.exit_code == 2
    assert "refusing to replace" in again.output
    dist = wheel_dir(tmp_path / "dist", "0.2.0")
    result = runner.invoke(
        app, ["release", "add", str(dist), "--key", str(key), "--store", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    _check(tmp_path / "s" / "0.2.0", load_private_key(key))
    assert load_public_key(key.with_name("release.pem.pub")) is not None
