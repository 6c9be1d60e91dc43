"""`python -m controller`: see controller/app.py."""

from controller import app
from kevents import runner

if __name__ == "__main__":
    runner.main(app.main)
