"""``python -m edge.upgrade.run_desired <version>``: one upgrade, started by the agent for its desired
version when it runs without systemd (:mod:`edge.upgrade.launch`); settings from the environment.

The outcome is in ``<prefix>/upgrade/state.json``, which the agent (old or new) reports in ``state``.
"""

from __future__ import annotations

import logging
import sys

from contract.release import ReleaseError, is_safe_version, load_public_key
from edge.upgrade.download import DownloadError, ReleaseServer, tls_context
from edge.upgrade.launch import UpgradeEnv
from edge.upgrade.restart import SupervisorRestart
from edge.upgrade.slots import NoBootableVersion, Slots
from edge.upgrade.supervisor import STATUS_NAME
from edge.upgrade.upgrade import InstallOptions, Plan, UpgradeBusy, upgrade

MAX_TOKEN_BYTES = 4096


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 1 or not is_safe_version(argv[0]):
        print("usage: python -m edge.upgrade.run_desired <version>", file=sys.stderr)
        return 2
    env = UpgradeEnv.from_environ()
    if env is None:
        print("YIWANG_UPGRADE_PREFIX and YIWANG_RELEASE_SERVER must be set", file=sys.stderr)
        return 2
    slots = Slots(env.prefix)
    try:
        with env.token_file.open("rb") as file:
            token = file.read(MAX_TOKEN_BYTES + 1)
        if len(token) > MAX_TOKEN_BYTES:
            raise OSError(f"{env.token_file} is larger than {MAX_TOKEN_BYTES} bytes: not a token file")
        install = InstallOptions(dependency_paths=env.dependency_paths, no_deps=bool(env.dependency_paths))
        plan = Plan(
            server=ReleaseServer(
                env.server, token.decode("utf-8", "replace").strip(), tls_context(env.ca_file)
            ),
            public_key=load_public_key(env.public_key),
            restarter=SupervisorRestart(slots.work / STATUS_NAME),
            health_url=env.metrics_url,
            deadline_s=env.deadline_s,
            install=install,
        )
        attempt = upgrade(slots, argv[0], plan)
    except (OSError, ReleaseError, DownloadError, UpgradeBusy, NoBootableVersion, ValueError) as err:
        print(f"upgrade to {argv[0]}: {err}", file=sys.stderr)
        return 2
    print(f"upgrade to {argv[0]}: {attempt.phase.value}" + (f": {attempt.reason}" if attempt.reason else ""))
    return 0 if attempt.phase.value == "confirmed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
