"""The ``neuroprobe`` command line.

One module per group of subcommands. Each module in this package that defines
``register(subparsers)`` is picked up by :func:`neuroprobe.cli.main.main`; ``register`` adds its
subcommands with ``subparsers.add_parser(...)`` and sets ``func=`` to a function taking the parsed
``argparse.Namespace``. Command modules hold no logic of their own: they call the public API.
"""
