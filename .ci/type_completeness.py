"""Print pyright's type completeness score of the package; fail below a minimum.

    python .ci/type_completeness.py [--minimum 0.99]

Runs ``pyright --verifytypes cometrunway --ignoreexternal`` with the current interpreter's
environment (pyright finds the installed package through it) and lists every public symbol
whose type is not fully known, so a drop names its cause.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = "cometrunway"
# The score this repository's CI holds the package to (issue 17 asks for at least 99%).
DEFAULT_MINIMUM = 0.99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minimum", type=float, default=DEFAULT_MINIMUM)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    # pyright resolves imports through the active environment: this interpreter's.
    env = {**os.environ, "VIRTUAL_ENV": str(bin_dir.parent)}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["pyright", "--verifytypes", PACKAGE, "--ignoreexternal", "--outputjson"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        report = json.loads(result.stdout)["typeCompleteness"]
    except (ValueError, KeyError):
        print(f"pyright gave no type completeness report:\n{result.stdout}{result.stderr}")
        return 1
    counts = report["exportedSymbolCounts"]
    for symbol in report["symbols"]:
        for diagnostic in symbol["diagnostics"]:
            if diagnostic["severity"] == "error":
                first_line = diagnostic["message"].splitlines()[0]
                print(f"  {symbol['name']}: {first_line}")
    score = float(report["completenessScore"])
    print(
        f"type completeness of {PACKAGE}: {score:.1%} (known {counts['withKnownType']}, "
        f"ambiguous {counts['withAmbiguousType']}, unknown {counts['withUnknownType']}); "
        f"minimum {args.minimum:.1%}"
    )
    return 0 if score >= args.minimum else 1


if __name__ == "__main__":
    sys.exit(main())
