"""Terraform files as python-hcl2 reads them, for the cloud tests: keys unquoted, one dict per resource."""

from pathlib import Path

import hcl2


def unquote(value):
    """python-hcl2 keeps the quotes of block labels: drop them from every key."""
    if isinstance(value, dict):
        return {k.strip('"'): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def resources(folder: Path) -> dict[tuple[str, str], dict]:
    """``(type, name) -> body`` of every resource in the folder's ``*.tf`` files."""
    found = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            for block in unquote(hcl2.load(handle)).get("resource", []):
                for kind, named in block.items():
                    for name, body in named.items():
                        found[(kind, name)] = body
    return found


def text(value) -> str:
    """A string attribute without the quotes python-hcl2 keeps around it."""
    return value.strip('"') if isinstance(value, str) else value
