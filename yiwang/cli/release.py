"""`yiwang release …` (server): sign agent releases; `yiwang edge upgrade|supervise|recover` (gateway).

The server side signs: ``release keygen`` makes the Ed25519 key, ``release add DIR`` stores a
directory of wheels as a release under the release directory, with a signed manifest, for
``/api/v1/releases`` to serve. The gateway side verifies and switches (docs/upgrades.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from yiwang.cli.edge import edge_app
from yiwang.cli.root import app

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

release_app = typer.Typer(no_args_is_help=True, help="Signed releases of the edge agent (run on the server).")
app.add_typer(release_app, name="release")

DEFAULT_KEY = Path("var/release-key.pem")
DEFAULT_PREFIX = Path("/opt/yiwang")
MAX_TOKEN_BYTES = 4096


@release_app.command("keygen")
def release_keygen(
    key: Annotated[Path, typer.Option(help="Where the private signing key goes (0600).")] = DEFAULT_KEY,
) -> None:
    """Make the Ed25519 release key; its public half (KEY.pub) goes onto every gateway."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from common.private_files import write_private
    from contract.release import private_key_pem, public_key_pem

    if key.exists():
        typer.echo(f"yiwang release keygen: {key} exists; refusing to replace a release key", err=True)
        raise typer.Exit(2)
    key.parent.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    write_private(key, private_key_pem(private))
    public = key.with_name(key.name + ".pub")
    public.write_text(public_key_pem(private))
    typer.echo(f"release key: {key} (keep it secret); public key for the gateways: {public}")


@release_app.command("add")
def release_add(
    directory: Annotated[Path, typer.Argument(help="The agent's wheel and its dependency wheels.")],
    key: Annotated[Path, typer.Option(help="The private release key.")] = DEFAULT_KEY,
    store: Annotated[
        Path | None, typer.Option(help="The release directory (default YIWANG_RELEASE_DIR, var/releases).")
    ] = None,
) -> None:
    """Store DIR's wheels as the release of the yiwang wheel's version, with a signed manifest."""
    from api.routes.releases import release_dir
    from contract.release import ReleaseError, load_private_key

    try:
        version = add_release(directory, load_private_key(key), store or release_dir())
    except ReleaseError as err:
        typer.echo(f"yiwang release add: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"release {version} stored and signed")


def add_release(directory: Path, key: Ed25519PrivateKey, store: Path) -> str:
    """Copy DIR's wheels into ``store/<version>/files`` and sign the manifest; the version stored.

    Releases are immutable: a version already stored is refused (a gateway may have half of it).
    """
    import shutil
    import tempfile

    from contract.release import (
        FILES_DIR,
        MANIFEST_NAME,
        SIGNATURE_NAME,
        ReleaseError,
        build_manifest,
        is_safe_version,
    )

    wheels = sorted(directory.glob("*.whl")) if directory.is_dir() else []
    if not wheels:
        raise ReleaseError(f"{directory}: no wheels (*.whl) to release")
    if others := sorted(p.name for p in directory.iterdir() if p.suffix != ".whl"):
        raise ReleaseError(f"{directory}: only wheels are released; remove {', '.join(others[:5])}")
    ours = [w for w in wheels if w.name.startswith("yiwang-")]
    if len(ours) != 1:
        raise ReleaseError(f"{directory}: needs exactly one yiwang-<version>-*.whl, found {len(ours)}")
    version = ours[0].name.split("-")[1]
    if not is_safe_version(version):
        raise ReleaseError(f"{ours[0].name}: {version!r} is not a version")
    target = store / version
    if target.exists():
        raise ReleaseError(f"release {version} is already stored in {store}; releases never change")
    store.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=store, prefix=f".{version}."))
    try:
        (building / FILES_DIR).mkdir()
        copies = [Path(shutil.copy2(w, building / FILES_DIR / w.name)) for w in wheels]
        data, signature = build_manifest(version, copies, key)
        (building / MANIFEST_NAME).write_bytes(data)
        (building / SIGNATURE_NAME).write_bytes(signature)
        building.chmod(0o755)
        building.rename(target)  # whole or not at all: the API never serves half a release
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return version


def _read_token(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TOKEN_BYTES + 1)
    except OSError as err:
        raise typer.BadParameter(f"{path}: {err.strerror or err}") from err
    if len(data) > MAX_TOKEN_BYTES:
        raise typer.BadParameter(f"{path} is larger than {MAX_TOKEN_BYTES} bytes: not a token file")
    return data.decode("utf-8", "replace").strip()


@edge_app.command("upgrade")
def edge_upgrade(
    version: Annotated[str, typer.Argument(help="The release to run, e.g. 0.2.0.")],
    server: Annotated[str, typer.Option(help="https://<server>/api/v1/releases")],
    token_file: Annotated[Path, typer.Option(help="An API token with the releases scope.")],
    public_key: Annotated[Path, typer.Option(help="The release key's public half (PEM).")],
    ca_file: Annotated[Path | None, typer.Option(help="CA of the server's certificate.")] = None,
    prefix: Annotated[Path, typer.Option(help="Where versions/ and current live.")] = DEFAULT_PREFIX,
    metrics_url: Annotated[
        str, typer.Option(help="The agent's /metrics, read to judge its health.")
    ] = "http://127.0.0.1:9108/metrics",
    deadline: Annotated[float, typer.Option(min=5, help="Seconds the new version has to be healthy.")] = 120,
    restart: Annotated[
        Literal["auto", "systemd", "supervisor"],
        typer.Option(help="How the agent is restarted; auto: systemd when run by systemd."),
    ] = "auto",
) -> None:
    """Verify, install beside the running version, switch, and confirm healthy or roll back."""
    from common.logs import setup_logging
    from contract.release import ReleaseError, load_public_key
    from edge.upgrade.download import DownloadError, ReleaseServer, tls_context
    from edge.upgrade.restart import Restarter, SupervisorRestart, SystemdRestart, under_systemd
    from edge.upgrade.slots import NoBootableVersion, Slots
    from edge.upgrade.state import Phase
    from edge.upgrade.supervisor import STATUS_NAME
    from edge.upgrade.upgrade import Plan, UpgradeBusy, upgrade

    setup_logging("edge")
    slots = Slots(prefix)
    restarter: Restarter
    if restart == "systemd" or (restart == "auto" and under_systemd()):
        restarter = SystemdRestart()
    else:
        restarter = SupervisorRestart(slots.work / STATUS_NAME)
    try:
        plan = Plan(
            server=ReleaseServer(server, _read_token(token_file), tls_context(ca_file)),
            public_key=load_public_key(public_key),
            restarter=restarter,
            health_url=metrics_url,
            deadline_s=deadline,
        )
        attempt = upgrade(slots, version, plan)
    except (ReleaseError, DownloadError, UpgradeBusy, NoBootableVersion, ValueError) as err:
        typer.echo(f"yiwang edge upgrade: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(
        f"upgrade to {version}: {attempt.phase.value}" + (f": {attempt.reason}" if attempt.reason else "")
    )
    if attempt.phase is not Phase.CONFIRMED:
        raise typer.Exit(1)


@edge_app.command("supervise")
def edge_supervise(
    config: Annotated[Path, typer.Option("--config", help="The gateway file the agent runs with.")],
    prefix: Annotated[Path, typer.Option(help="Where versions/ and current live.")] = DEFAULT_PREFIX,
) -> None:
    """Run the agent of PREFIX/current and restart it when an upgrade switches (no systemd here)."""
    from common.runner import run_until_signalled
    from edge.upgrade.slots import Slots
    from edge.upgrade.supervisor import supervise

    args = ["edge", "run", "--config", str(config.resolve())]
    run_until_signalled("edge", lambda stop: supervise(Slots(prefix), args, stop))


@edge_app.command("recover")
def edge_recover(
    prefix: Annotated[Path, typer.Option(help="Where versions/ and current live.")] = DEFAULT_PREFIX,
) -> None:
    """Finish an upgrade cut by a crash or power loss, so PREFIX/current boots (systemd ExecStartPre)."""
    from edge.upgrade.slots import NoBootableVersion, Slots

    try:
        version = Slots(prefix).recover()
    except NoBootableVersion as err:
        typer.echo(f"yiwang edge recover: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"current: {version}")
