"""`python -m ghost_engine` runs the same command line as `ghost-engine`."""

from ghost_engine.cli import main

if __name__ == "__main__":
    main()
