"""``braintumor keys add|revoke|list`` and ``braintumor audit verify``.

``keys add`` prints the new key once, on stdout; only its hash is written to the file
(API_KEYS_FILE, or --file). Nothing here prints a stored hash or a key it did not make.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from braintumor.errors import ConfigError


def _keys_file(args: argparse.Namespace) -> Path:
    if args.file:
        return Path(args.file)
    settings = args.settings  # loaded once by main()
    if settings.API_KEYS_FILE is None:
        raise ConfigError("API_KEYS_FILE", "not set: pass --file or set API_KEYS_FILE")
    return Path(settings.API_KEYS_FILE)


def cmd_keys_add(args: argparse.Namespace) -> int:
    from braintumor.api.security import add_key

    key = add_key(_keys_file(args), args.name)
    print(key)
    print(f"key {args.name} added: send it as 'Authorization: Bearer KEY'; it is shown only "
          "this once", file=sys.stderr)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from braintumor.api.security import revoke_key

    revoke_key(_keys_file(args), args.name)
    print(f"key {args.name} revoked (answers 403 FORBIDDEN from now on)", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from braintumor.api.security import parse_key_file

    path = _keys_file(args)
    for entry in parse_key_file(path.read_text(encoding="utf-8"), str(path)):
        print(f"{entry.name}\t{'revoked' if entry.revoked else 'active'}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from braintumor.api.audit import verify_file

    result = verify_file(Path(args.path))
    for problem in result.problems:
        print(problem, file=sys.stderr)
    state = "ok" if result.ok else f"{len(result.problems)} problems"
    print(f"{args.path}: {result.lines} lines, {state}")
    return 0 if result.ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="API keys for API_KEYS_FILE: add, revoke, list")
    keys = p.add_subparsers(dest="keys_command", required=True)
    for name, func, text in (("add", cmd_keys_add, "make a key NAME; prints it once"),
                             ("revoke", cmd_keys_revoke, "revoke the key NAME (403 after)"),
                             ("list", cmd_keys_list, "names and states, never hashes")):
        q = keys.add_parser(name, help=text)
        if name != "list":
            q.add_argument("name")
        q.add_argument("--file", help="the keys file (default: API_KEYS_FILE)")
        q.set_defaults(func=func)
    p = sub.add_parser("audit", help="the audit trail (AUDIT_LOG)")
    audit = p.add_subparsers(dest="audit_command", required=True)
    q = audit.add_parser("verify", help="check every line of an audit file; exit 1 if not")
    q.add_argument("path")
    q.set_defaults(func=cmd_audit_verify)
