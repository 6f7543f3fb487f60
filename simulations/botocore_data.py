"""botocore's data files parsed once per process, not once per session: a start-up cost of moto, removed.

botocore parses its JSON data (``endpoints.json``, ``partitions.json``, each service's model) once per
*session*: a :class:`botocore.loaders.Loader` caches what it loaded on the instance. moto makes new
sessions all the time. Importing ``moto.ec2`` (which moto's CloudFormation imports, and with it every
stack this guide deploys on moto) calls ``boto3.Session().get_available_regions("ec2")`` three times, and
each call parses the 1 MB EC2 model and ``endpoints.json`` again; every account-specific backend moto
creates (one per service and account, on first use) asks a new session for the regions again. In a fresh
process about 45% of the CPU of the first pipeline run went into ``json.loads`` of files already parsed
(measured with py-spy): roughly 1.5 s per process, paid by every test worker, notebook kernel and
command-line run.

:func:`install` keeps what :meth:`JSONFileLoader.load_file` returned, per file path, for the life of the
process, and hands the same object to every later loader: what botocore already does within one session
(its ``instance_cache`` gives every client of a session the same objects), extended across sessions. The
files are botocore's own package data, which does not change while a process runs. One place in botocore
changes a loaded model: :meth:`Loader.load_service_model` merges a service's ``sdk-extras`` into it, and
that merge is idempotent (it sets the same keys to the same values), so a model loaded twice is the model
loaded once; ``tests/test_botocore_data.py`` checks it, and that every file loads equal to a fresh
parse. The reference package never imports this module; the simulations and the test suite install it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "installed", "uninstall"]

_PARSED: dict[str, Any] = {}
_ORIGINAL: dict[str, Any] = {}


def install() -> None:
    """Parse each botocore data file once per process (idempotent)."""
    if _ORIGINAL:
        return
    from botocore.loaders import JSONFileLoader

    original = JSONFileLoader.load_file
    _ORIGINAL["load_file"] = original

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        try:
            return _PARSED[file_path]
        except KeyError:
            pass
        data = original(self, file_path)
        if data is not None:  # a path that does not exist is asked again: a later install may add it
            _PARSED[file_path] = data
        return data

    load_file.__doc__ = original.__doc__
    JSONFileLoader.load_file = load_file  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_ORIGINAL)


def uninstall() -> None:
    """botocore's own loading again, and the parsed files forgotten."""
    if not _ORIGINAL:
        return
    from botocore.loaders import JSONFileLoader

    JSONFileLoader.load_file = _ORIGINAL.pop("load_file")  # type: ignore[method-assign]
    _PARSED.clear()
