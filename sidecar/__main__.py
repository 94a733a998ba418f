"""`python -m sidecar`: the same as the `ai-sidecar` command. Knows nothing else."""

from sidecar.cli import main

if __name__ == "__main__":
    main()
