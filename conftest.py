"""Session-wide safety for every test, notebooks (nbmake) included.

Nothing in the suite may reach a real AWS account whatever the developer's shell says, and notebooks
run by the tests write their metrics to a temporary folder, not to the site's build folder.
"""

from __future__ import annotations

import os
import tempfile

for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "FASTERPAY_ALLOW_REAL_AWS"):
    os.environ.pop(_var, None)
os.environ["FASTERPAY_BACKEND"] = "moto"
os.environ.setdefault("FASTERPAY_SCALE", "ci")
os.environ["FASTERPAY_METRICS_DIR"] = tempfile.mkdtemp(prefix="fasterpay-test-metrics-")
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
