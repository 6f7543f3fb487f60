"""``python -m fasterpay.audit`` runs the offline verifier (same as ``python -m fasterpay.audit.verify``)."""

import sys

from .verify import main

sys.exit(main())
