"""``python -m raynas``: the same as the ``raynas`` command."""

if __name__ == "__main__":
    import sys

    from raynas.cli import main

    sys.exit(main())
