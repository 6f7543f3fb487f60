"""Build tooling for the guide's site: diagrams, notebooks, threat models and metrics pages.

Not part of the reference package: a copier never needs it.
"""
