"""A minimal edge agent as a child process, for SIGKILL tests: the real Spool and GatewayPublisher.

``produce``: append a tick of readings every few ms and log each tick *after* its append returned
(so a logged tick is one the spool accepted); runs until killed. ``drain``: publish what is spooled,
print ``drained`` and exit once the spool is empty.

Usage: python tests/edge/spool_agent.py MODE SPOOL HOST PORT COMMUNITY GATEWAY LOG START_SECOND
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from contract.messages import Reading
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Spool

T0 = 1_764_183_600_000
DEVICES = 5


def main(argv: list[str]) -> int:
    mode, spool_path, host, port, community, gateway, log_path, start = argv
    with Spool(Path(spool_path), max_items=50) as spool:
        options = MqttOptions(
            host=host, port=int(port), reconnect_min_s=0.2, reconnect_max_s=1, max_queued=20
        )
        publisher = GatewayPublisher(community, gateway, spool, [], options)
        publisher.start()
        try:
            if mode == "drain":
                while spool.depth() > 0:
                    publisher.pump()
                    time.sleep(0.05)
                print("drained", flush=True)
                return 0
            with Path(log_path).open("a", encoding="utf-8") as log:
                second = int(start)
                while True:
                    ts = T0 + second * 1000
                    batch = [
                        Reading(device=f"th-{d:02d}", ts=ts, values={"temperature": 20.5})
                        for d in range(DEVICES)
                    ]
                    publisher.publish_readings(batch)
                    log.write(f"{second}\n")
                    log.flush()
                    second += 1
                    time.sleep(0.002)
        finally:
            publisher.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
