import sys

from mindupload.cli import main

sys.exit(main())
