"""``python -m fasterpay.audit [verify] EXPORT_DIR --public-key KEY.pem [--witness LAST.json] [--json]``.

Runs the offline verifier, the same as ``python -m fasterpay.audit.verify``; the word ``verify`` is optional.
"""

import sys

from .verify import main

_argv = sys.argv[1:]
sys.exit(main(_argv[1:] if _argv[:1] == ["verify"] else _argv))
