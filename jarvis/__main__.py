"""`python -m jarvis` is the same as the `jarvis` command."""
from jarvis.app import main

if __name__ == "__main__":
    raise SystemExit(main())
