"""``python -m annfast`` (and the ``annfast`` command): run the demo on the bundled house-price data."""
from .demo import run_demo


def main() -> None:
    """Entry point of the ``annfast`` command."""
    run_demo()


if __name__ == "__main__":
    main()
