"""``python -m neurosim`` runs the ``neurosim`` command (what ``torchrun -m neurosim train ...`` needs)."""

import sys

from neurosim.cli import main

if __name__ == "__main__":
    sys.exit(main())
