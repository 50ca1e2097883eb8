"""``neurosim lsm``: train the readout of an RRAM liquid state machine and estimate its reservoir's energy."""

from __future__ import annotations

__all__ = ["register"]


def cmd_lsm(args) -> int:
    from neurosim.cli import check_config_command, resolve_config
    from neurosim.config import ConfigError
    from neurosim.estimation import joules
    from neurosim.lsm.config import load_lsm_config
    from neurosim.lsm.run import run_lsm

    path = resolve_config(args.config, "lsm_", "LSM config")
    try:
        cfg = load_lsm_config(path, args.set)
    except ConfigError:
        check_config_command(path, "lsm", args.config)  # e.g. --config quickstart: say it is train's
        raise
    result = run_lsm(cfg, progress=not args.quiet, overwrite=args.overwrite)
    m = result.metrics
    print(f"run folder: {result.run_dir}")
    print(f"test accuracy ({m['readout']} readout): software {m['acc_software']:.2f} %, "
          f"RRAM weights read exactly {m['acc_rram_ideal']:.2f} %, on the chip (read noise, ADC) "
          f"{m['acc_rram']:.2f} % (chance {m['chance_acc']:.1f} %)")
    for t, e in result.estimates.items():
        extra = ""
        if f"energy_j_{t}_measured_g" in m:
            extra = f" ({joules(m[f'energy_j_{t}_measured_g'])} with the cells' own conductances)"
        print(f"reservoir energy on {t}: {joules(e.total_energy_j)} per inference{extra}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("lsm", help="RRAM liquid state machine: fixed random reservoir, trained readout, energy")
    p.add_argument("--config", default="lsm_event_digits",
                   help="LSM config file, or the name of a shipped one (default: lsm_event_digits)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set readout.kind=mlp data.train_subset=200")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run folder even if it holds an LSM run of other settings (a train or "
                        "continual run there is always refused)")
    p.set_defaults(func=cmd_lsm)
