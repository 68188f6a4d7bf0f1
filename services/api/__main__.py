"""Serve the API service alone: ``python -m services.api`` (same as ``services.serve api``)."""

import sys

from services.serve import main

if __name__ == "__main__":
    sys.exit(main(["api", *sys.argv[1:]]))
