"""`python -m radsynth` runs the command line."""

from radsynth.cli.app import main

if __name__ == "__main__":
    main()
