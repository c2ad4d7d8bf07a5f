import sys

from neuroprobe.cli.main import main

sys.exit(main())
