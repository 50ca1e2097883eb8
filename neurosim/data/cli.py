"""``neurosim datasets``: list the registered datasets and whether each is on disk."""

from __future__ import annotations

__all__ = ["register"]


def cmd_datasets(args) -> int:
    from neurosim.data.registry import DATASETS

    rows = []
    for info in sorted(DATASETS.values(), key=lambda i: (not i.bundled, i.name)):
        root = info.root(args.root)
        rows.append((info.name, "on disk" if info.on_disk(root) else "not on disk",
                     "x".join(map(str, info.sensor_size)), str(info.num_classes), str(info.location(root))))
    head = ("name", "status", "sensor", "classes", "path")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list the datasets neurosim knows, and whether each is on disk")
    p.add_argument("action", choices=("list",))
    p.add_argument("--root", default=None, help="dataset root folder (default: the neurosim cache)")
    p.set_defaults(func=cmd_datasets)
