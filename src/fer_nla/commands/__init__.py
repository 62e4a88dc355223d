"""Subcommands of the ``fer-nla`` command line, one module each (see ``fer_nla.cli``)."""
