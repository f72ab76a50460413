"""The routing-eval command line.

Ctrl-C while Python is still importing the command's libraries (seconds) ends it with one
line, not a traceback: `lm_routing.cli.main.main` takes SIGINT back once it runs.
"""

import os
import signal
import sys


def _interrupted_while_starting(signum, frame):
    os.write(2, b"routing-eval: interrupted while starting; nothing was written\n")
    os._exit(128 + signum)


if os.path.basename(sys.argv[0]) == "routing-eval" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
