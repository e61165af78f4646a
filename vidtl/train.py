"""``python -m vidtl.train``: the same as ``vidtl-train``."""

from vidtl.cli.train import main

if __name__ == "__main__":
    main()
