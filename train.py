"""Train a pseudopotential: `python train.py [data.bundle=/path/to/inputs] [overrides...]`.

Without arguments the embedded zinc-blende CdSe example runs. See README.md and conf/.
"""

from dpp.app.cli import main

if __name__ == "__main__":
    main("train")
