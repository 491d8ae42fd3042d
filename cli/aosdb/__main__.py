"""`python -m aosdb` runs the CLI."""

from aosdb.cli import main

main()
