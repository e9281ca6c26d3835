"""`make bench`: every benchmark in turn, each printing its own figures.

    python bench/run_all.py            # all of them, default sizes (the SLA one holds
                                       # 1,000,000 clocks and takes ~15 minutes)
    python bench/run_all.py sla_clocks --clocks 100000   # one, with its own options
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["boards_list", "board_render", "portal_pages", "intake_mail", "notify_throughput",
         "stats_figures", "kb_search", "task_cards", "cards_search", "pipeline", "replicas",
         "ttl_sweep", "sla_clocks", "admin_pages", "automation"]


def main(argv: list[str]) -> int:
    names, extra = (argv[:1], argv[1:]) if argv else (ORDER, [])
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *extra])
        print(f"--- {name}: exit {rc} after {time.monotonic() - started:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
