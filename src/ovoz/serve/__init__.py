"""``ovoz serve``: OpenAI's audio transcription API over one model, with batching across requests and a web page.

Needs the ``serve`` extra (``pip install 'ovoz[serve]'``: FastAPI, uvicorn, python-multipart, prometheus-client).

    from ovoz.serve import ServeSettings, create_app
    app = create_app(ServeSettings(batch_size=32), transcriber=ovoz.load())   # any ASGI server runs it
"""

from __future__ import annotations

from typing import Any

from .settings import ENVIRONMENT, ServeSettings

__all__ = ["ServeSettings", "ENVIRONMENT", "create_app"]


def create_app(settings: ServeSettings | None = None, transcriber: Any = None, **kwargs: Any) -> Any:
    """The ASGI app; see :func:`ovoz.serve.app.create_app`."""
    from ..errors import DependencyError

    try:
        from .app import create_app as _create_app
    except ImportError as error:
        raise DependencyError(f"ovoz serve needs {error.name}: pip install 'ovoz[serve]'.") from error
    return _create_app(settings, transcriber, **kwargs)
