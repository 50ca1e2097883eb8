"""``neurosim continual``: run a continual-learning config (baseline, EWC, HLOP, multitask) into ``runs/NAME/``.

    neurosim continual --config continual_pmnist_digits [--set key.path=value ...] [--methods hlop baseline]
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["register"]


def cmd_continual(args) -> int:
    from neurosim.cli import UserError, _note_moved_run, check_config_command, resolve_config
    from neurosim.config import ConfigError
    from neurosim.continual.config import load_continual_config
    from neurosim.continual.runner import run_continual

    overrides = list(args.set)
    if args.methods and any(o.strip().startswith("methods") and o.partition("=")[0].strip() == "methods"
                            for o in overrides):
        raise UserError("--methods and --set methods=... both choose the methods to run; give one of them")
    if args.methods:
        overrides.append("methods=[" + ", ".join(f'"{m}"' for m in args.methods) + "]")
    path = resolve_config(args.config, "continual_", "continual config")
    try:
        cfg = load_continual_config(path, overrides)
    except ConfigError:
        check_config_command(path, "continual", args.config)  # e.g. --config quickstart: say it is train's
        raise
    quiet = getattr(args, "quiet", False)
    args.run_dir = Path(cfg.out_dir) / cfg.name  # for the message if the run is interrupted
    _note_moved_run(path, args.run_dir)
    run = run_continual(cfg, progress=not quiet, log=None if quiet else print, resume=not args.no_resume)
    seeds = len(cfg.seeds)
    if seeds > 1:  # the spread tells whether two methods differ more than their seeds do
        print(f"mean ± std (ddof 1) over {seeds} seeds:")
    for method, s in run.summary.items():
        spread = (lambda key, fmt: "" if s.get(key) is None else f" ± {s[key]:{fmt}}")
        bwt = f"{s['bwt_mean']:+.2f}{spread('bwt_std', '.2f')}" if "bwt_mean" in s else "—"
        print(f"{method:9s} ACC {s['acc_mean']:6.2f}{spread('acc_std', '.2f')} %  BWT {bwt}")
    print(f"run folder: {run.run_dir}")
    if run.models:  # what the run leaves for the chip estimates (its own: not every file in models/)
        print(f"models: {run.run_dir / 'models'} ({len(run.models)}; neurosim estimate --checkpoint "
              f"{run.models[0]} costs one on chips)")
    return 0


def register(sub) -> None:
    """Add the ``continual`` subcommand to ``neurosim``'s subparsers."""
    p = sub.add_parser("continual", help="continual learning over a task sequence: baseline, EWC, HLOP, multitask")
    p.add_argument("--config", required=True,
                   help="config file, or the name of a shipped config (e.g. continual_pmnist_digits)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=1 seeds=[0,1,2]")
    p.add_argument("--methods", nargs="+", choices=("baseline", "ewc", "hlop", "multitask"), default=None,
                   help="run only these methods (default: the config's `methods`)")
    p.add_argument("--no-resume", action="store_true",
                   help="train every (method, seed) anew instead of reusing those an earlier run of the same "
                        "settings finished (in the run folder's finished/)")
    p.set_defaults(func=cmd_continual)
