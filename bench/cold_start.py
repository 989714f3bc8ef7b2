"""Cold start: import ``function_app`` and index every function, in fresh processes.

Prints the median over N fresh interpreters and its ratio to a bare ``import azure.functions``
(the floor any Python Functions app pays). Target: ratio <= 1.5. Also lists any heavy SDK that the
import pulled in (there should be none: adapters import them on first use).

    .venv/bin/python bench/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import HEAVY_SDKS as HEAVY  # noqa: E402 - after the path is set

BASELINE = """
import time; t = time.perf_counter()
import azure.functions
print(time.perf_counter() - t)
"""
APP = """
import json, sys, time; t = time.perf_counter()
import function_app
functions = function_app.app.get_functions()
elapsed = time.perf_counter() - t
heavy = sorted({m for m in sys.modules if m.startswith(HEAVY)})
print(json.dumps({"seconds": elapsed, "functions": len(functions), "heavy": heavy}))
"""


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "0"})
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    run(BASELINE)  # warm the bytecode cache so both sides are measured the same way
    run(APP.replace("HEAVY", repr(HEAVY)))
    base, app, heavy, count = [], [], set(), 0
    for _ in range(args.runs):  # interleaved, so machine noise hits both sides alike
        base.append(float(run(BASELINE)))
        result = json.loads(run(APP.replace("HEAVY", repr(HEAVY))))
        app.append(result["seconds"])
        heavy.update(result["heavy"])
        count = result["functions"]
    b, a = statistics.median(base), statistics.median(app)
    ratio = a / b
    print(f"cold start over {args.runs} fresh processes (median)")
    print(f"  import azure.functions                 {b * 1000:7.1f} ms")
    print(f"  import function_app + index {count:2d} fns    {a * 1000:7.1f} ms")
    print(f"  ratio                                  {ratio:7.2f}x   (target <= 1.50)")
    print(f"  heavy SDKs imported at start-up        {', '.join(sorted(heavy)) or 'none'}")
    return 0 if ratio <= 1.5 and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
