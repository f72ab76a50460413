"""The routing-eval command line.

Ctrl-C while Python is still importing the command's libraries (seconds) ends it with one
line, not a traceback: `lm_routing.cli.main.main` takes SIGINT back once it runs. The handler is armed by
`_lm_routing_hook` (imported by lm_routing.pth while site runs, before the console script);
importing it here arms it when site did not run the hook (python -S, a copied tree).
"""

import _lm_routing_hook

_lm_routing_hook.arm_start_up_interrupt()
