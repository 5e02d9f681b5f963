"""Write docs/cli.md, the command reference, from dnnlab's argument parser.

    .venv/bin/python scripts/cli_reference.py

tests/test_cli.py fails when docs/cli.md and the parser disagree.
"""

from pathlib import Path

from dnnlab.cli import reference

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    path.write_text(reference())
    print(f"wrote {path}")
