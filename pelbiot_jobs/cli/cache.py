"""``cache invalidate``: delete the API's cached keys by pattern (SCAN + UNLINK, never KEYS)."""

from __future__ import annotations

from .common import EXIT_OK, add_json, command, group, print_json, require_broker


def register(sub) -> None:
    _, actions = group(sub, "cache", "cache operations: invalidate keys by pattern (SCAN + UNLINK, never KEYS)",
                       "examples:\n  pelbiot-jobs cache invalidate 'route:/api/devices*'\n"
                       "  pelbiot-jobs cache invalidate 'route:/api/load-profile/*' --dry-run\n"
                       "  pelbiot-jobs run cache.warm --param warmer=load_profile.peak --wait\n")
    p = command(actions, "invalidate", cmd_invalidate,
                "unlink the keys matching a pattern, inside the namespaces cache.yaml's warmers write")
    p.add_argument("pattern", help="a Redis glob pattern, e.g. 'route:/api/devices*'")
    p.add_argument("--dry-run", action="store_true", help="count the keys, unlink nothing")
    add_json(p)


def cmd_invalidate(settings, args) -> int:
    from ..cache.service import invalidate, invalidation_namespaces

    invalidation_namespaces(settings, args.pattern)  # a pattern outside the warmers' keys: say so first
    if settings.embedded_redis:
        require_broker(settings)
    count = invalidate(settings, args.pattern, dry_run=args.dry_run)
    if args.json:
        print_json({"pattern": args.pattern, "keys": count, "dry_run": args.dry_run})
    else:
        print(f"{'would unlink' if args.dry_run else 'unlinked'} {count} keys matching {args.pattern!r} (SCAN + UNLINK)")
    return EXIT_OK
