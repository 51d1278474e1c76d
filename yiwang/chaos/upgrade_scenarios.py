"""Agent upgrades under the chaos harness: ``agent-upgrade`` and ``agent-upgrade-broken``.

gw-02 is moved onto an A/B prefix (``edge.upgrade.slots``) and upgraded while the stack runs, through
the real upgrade: a release signed with Ed25519, served over HTTPS (a throw-away certificate),
downloaded, verified, installed into a new virtualenv beside the running one, switched by symlink,
the gateway restarted (SIGTERM, as systemd does) and confirmed healthy or rolled back. The harness's
seq accounting then proves that no reading the gateway took before, during or after the switch was
lost. ``agent-upgrade-broken`` ships a release whose command dies at start: it must be rolled back.

What is not the production agent, and why: the "agent" in each version is a small real wheel whose
``yiwang`` command runs the harness's gateway (``yiwang.chaos.gateway``: the edge's real spool and
publisher, a deterministic source and the log the accounting needs), with this source tree and this
virtualenv's packages seen through a ``.pth``. Building and installing full Yiwang wheels takes
minutes on a CI machine (``tests/edge/upgrade/test_rollout_agent.py`` does that, with ``yiwang edge
supervise`` and ``yiwang edge run``); and health is judged from the gateway's own log (new ticks
spooled by a live process) because the harness gateway serves no ``/metrics``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import itertools
import re
import site
import ssl
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from contract.release import FILES_DIR, MANIFEST_NAME, SIGNATURE_NAME, build_manifest
from edge.upgrade.download import ReleaseServer, tls_context
from edge.upgrade.health import Verdict
from edge.upgrade.slots import Slots
from edge.upgrade.state import Phase
from edge.upgrade.supervisor import child_environment
from edge.upgrade.upgrade import InstallOptions, Plan, upgrade
from yiwang.chaos.accounting import Tally
from yiwang.chaos.harness import Harness, last_logged_tick
from yiwang.chaos.processes import wait_until
from yiwang.servers import ServerStartError
from yiwang.servers.process import log_tail

UPGRADE_GATEWAY = "gw-01"
OLD, NEW, BROKEN = "1.0.0", "1.1.0", "1.2.0"
PACKAGE = "yiwang_chaos_agent"
TOKEN = "yw_chaos-release-token"  # noqa: S105 - a throw-away server's, for this run only
HEALTH_DEADLINE_S = 15.0
HEALTHY_TICKS = 3
QUIET_AFTER_S = 30.0
"""The floods (planned 2 s before the warm-up ends, 12 s long) are over by then: the switch must not
move the flooding cases the run expects."""
WHEEL = b"Wheel-Version: 1.0\nGenerator: yiwang-chaos\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
_ROUTE = re.compile(r"^/api/v1/releases/([0-9A-Za-z.+_-]+)/(manifest|signature|files/([A-Za-z0-9._+-]+))$")


# --- the releases ------------------------------------------------------------------------------------


def build_wheel(out: Path, version: str, broken: bool) -> Path:
    """A real wheel: one module and a ``yiwang`` console script running the harness gateway."""
    body = f'VERSION = "{version}"\n\n\ndef main() -> None:\n' + (
        '    raise SystemExit("broken on purpose: this release cannot start")\n'
        if broken
        else "    import sys\n    from pathlib import Path\n\n"
        "    from yiwang.chaos.gateway import main as run\n\n    run(Path(sys.argv[1]))\n"
    )
    info = f"yiwang_chaos_agent-{version}.dist-info"
    files = {
        f"{PACKAGE}.py": body.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: yiwang-chaos-agent\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": WHEEL,
        f"{info}/entry_points.txt": f"[console_scripts]\nyiwang = {PACKAGE}:main\n".encode(),
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"yiwang_chaos_agent-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def store_release(store: Path, wheel: Path, version: str, key: Ed25519PrivateKey) -> None:
    """The layout ``yiwang release add`` writes and ``/api/v1/releases`` serves."""
    root = store / version
    (root / FILES_DIR).mkdir(parents=True)
    (root / FILES_DIR / wheel.name).write_bytes(wheel.read_bytes())
    manifest, signature = build_manifest(version, [wheel], key)
    (root / MANIFEST_NAME).write_bytes(manifest)
    (root / SIGNATURE_NAME).write_bytes(signature)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yiwang chaos releases")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "releases.pem", directory / "releases.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def serve_releases(store: Path, cert: Path, key: Path) -> Iterator[str]:
    """The release routes over HTTPS in a thread; the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            match = _ROUTE.match(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}" or match is None:
                self._empty(401 if match else 404)
                return
            version, what, name = match.groups()
            root = store / version
            path = {"manifest": root / MANIFEST_NAME, "signature": root / SIGNATURE_NAME}.get(
                what, root / FILES_DIR / (name or "")
            )
            if not path.is_file():
                self._empty(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _empty(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="chaos-releases", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/api/v1/releases"
    finally:
        server.shutdown()
        server.server_close()


# --- the gateway on its A/B prefix -------------------------------------------------------------------


def dependency_paths() -> tuple[Path, ...]:
    """This source tree and this virtualenv's packages, for the versions' ``.pth``."""
    import yiwang

    source = Path(yiwang.__file__).resolve().parents[1]
    return (source, *(Path(p) for p in site.getsitepackages() if p.endswith("site-packages")))


class HarnessRestart:
    """Restart the harness's gateway on ``<prefix>/current``: SIGTERM, then start the new command."""

    def __init__(self, h: Harness, gateway: str) -> None:
        self.h, self.gateway = h, gateway
        self.restarted_at = 0.0

    def restart(self, version: str) -> None:
        proc = self.h.gateways[self.gateway].proc
        proc.halt()
        self.restarted_at = time.monotonic()
        # A version that dies at start: the health check says so and the upgrade rolls back.
        with contextlib.suppress(ServerStartError):
            proc.start()


def log_health(h: Harness, gateway: str) -> Callable[[str, float], Verdict]:
    """Healthy: the process lives and spooled ``HEALTHY_TICKS`` new ticks within the deadline."""

    def check(_url: str, deadline_s: float) -> Verdict:
        run = h.gateways[gateway]
        first = last_logged_tick(run.plan.log)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if not run.proc.running:
                problem = "the gateway process is not running"
            elif last_logged_tick(run.plan.log) >= first + HEALTHY_TICKS:
                return Verdict(True, f"spooling: tick {first} → {last_logged_tick(run.plan.log)}")
            else:
                problem = f"no new reading spooled (tick {first})"
            time.sleep(0.2)
        return Verdict(False, f"not healthy within {deadline_s:g} s: {problem}")

    return check


def move_onto_slots(h: Harness, gateway: str, slots: Slots, wheels: Path, options: InstallOptions) -> None:
    """Install the old version into the prefix and run the gateway from ``current`` (its first restart)."""
    slots.install(
        OLD,
        wheels,
        requirement=f"yiwang-chaos-agent=={OLD}",
        dependency_paths=options.dependency_paths,
        no_deps=True,
    )
    slots.set_link(slots.current, OLD)
    run = h.gateways[gateway]
    wait_until(lambda: time.monotonic() - h.started >= QUIET_AFTER_S, 120, "the floods to end")
    run.proc.halt()
    before = last_logged_tick(run.plan.log)
    run.proc.argv = [str(slots.current / "bin" / "yiwang"), str(run.plan_path)]
    run.proc.env = child_environment()
    run.proc.start()
    try:
        wait_until(lambda: last_logged_tick(run.plan.log) > before + 2, 60, "the gateway on its prefix")
    except TimeoutError as err:
        raise TimeoutError(f"{err}; log {run.proc.log_path}:\n{log_tail(run.proc.log_path)}") from err


def _upgrade_to(h: Harness, target: str) -> None:
    work = h.workdir / "agent-upgrade"
    store, certs = work / "releases", work / "certs"
    certs.mkdir(parents=True)
    key = Ed25519PrivateKey.generate()
    wheels: dict[str, Path] = {}
    for version, broken in ((OLD, False), (NEW, False), (BROKEN, True)):
        wheel = build_wheel(work / f"dist-{version}", version, broken)
        wheels[version] = wheel.parent
        store_release(store, wheel, version, key)
    cert, tls_key = self_signed(certs)
    slots = Slots(work / "prefix")
    options = InstallOptions(
        dependency_paths=dependency_paths(), no_deps=True, requirement=lambda v: f"yiwang-chaos-agent=={v}"
    )
    move_onto_slots(h, UPGRADE_GATEWAY, slots, wheels[OLD], options)
    restarter = HarnessRestart(h, UPGRADE_GATEWAY)
    with serve_releases(store, cert, tls_key) as url:
        plan = Plan(
            server=ReleaseServer(url, TOKEN, tls_context(cert), retry_pause_s=0.2),
            public_key=key.public_key(),
            restarter=restarter,
            health_url="",
            deadline_s=HEALTH_DEADLINE_S,
            install=options,
            health=log_health(h, UPGRADE_GATEWAY),
        )
        started = time.monotonic()
        switched_at = time.time_ns() // 1_000_000
        attempt = upgrade(slots, target, plan)
        took = time.monotonic() - started
    running = slots.target(slots.current)
    h.fault = {
        "gateway": UPGRADE_GATEWAY,
        "from": OLD,
        "to": target,
        "outcome": attempt.phase.value,
        "reason": attempt.reason,
        "running": running,
        "upgrade_s": round(took, 1),
        "longest_pause_s": longest_pause_s(h.gateways[UPGRADE_GATEWAY].plan.log, switched_at),
        "upgraded": attempt.phase is Phase.CONFIRMED and running == target,
        "rolled_back": attempt.phase is Phase.ROLLED_BACK and running == OLD,
    }
    # The fault landed when the gateway was switched and restarted on the new version.
    h.fault_landed = restarter.restarted_at > 0 and attempt.phase in (Phase.CONFIRMED, Phase.ROLLED_BACK)


def longest_pause_s(log: Path, since_ms: int) -> float:
    """The longest pause between readings the gateway took (its log's tick times) since ``since_ms``:
    the switch, and for a broken release the health deadline and the rollback too."""
    stamps = [
        int(parts[2])
        for line in log.read_text(encoding="utf-8").splitlines()
        if (parts := line.split()) and parts[0] == "T" and len(parts) == 3 and int(parts[2]) >= since_ms
    ]
    return round(max((b - a for a, b in itertools.pairwise(stamps)), default=0) / 1000, 1)


def agent_upgrade(h: Harness, scale: float) -> None:
    _upgrade_to(h, NEW)
    time.sleep(max(1.0, 10 * scale))  # the new version runs on


def agent_upgrade_broken(h: Harness, scale: float) -> None:
    _upgrade_to(h, BROKEN)
    time.sleep(max(1.0, 10 * scale))  # the old version runs on


EXPECTED = {"agent-upgrade": "upgraded", "agent-upgrade-broken": "rolled_back"}


def upgrade_report(name: str, tallies: Sequence[Tally]) -> dict[str, Any]:
    """The ``upgraded`` / ``rolled_back`` fields of a run's JSON; the run is ok only with its outcome."""
    if name not in EXPECTED:
        return {}
    upgraded = all(t.fault.get("upgraded", False) for t in tallies)
    rolled_back = all(t.fault.get("rolled_back", False) for t in tallies)
    return {
        "upgraded": upgraded,
        "rolled_back": rolled_back,
        "checks_ok": upgraded if EXPECTED[name] == "upgraded" else rolled_back,
    }
