"""`python -m gabaapp` runs the command-line interface."""

from gabaapp.cli.run import console_entry

if __name__ == "__main__":
    console_entry()
