"""``python -m vidtl.eval``: the same as ``vidtl-eval``."""

from vidtl.cli.evaluate import main

if __name__ == "__main__":
    main()
