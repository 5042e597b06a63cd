"""``python -m monai_nnunet NAME ...``: the same commands as the ``monai-nnunet`` console script."""

import sys

from monai_nnunet.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
