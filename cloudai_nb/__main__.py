import sys

from cloudai_nb.cli import main

sys.exit(main())
