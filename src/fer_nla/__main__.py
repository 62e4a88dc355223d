"""``python -m fer_nla``: the entry point that ``torchrun -m fer_nla`` uses too."""

from fer_nla.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
