"""Reference code for *Faster Payments on AWS*.

Each pattern module talks to AWS only through boto3 clients that the caller passes in, so the same code
runs against moto (the default in this guide) and against a real AWS account. The shared helpers
(:mod:`fasterpay.aws`, :mod:`fasterpay.metering`, :mod:`fasterpay.faults`) are optional for a copier.
"""

__version__ = "0.1.0"
