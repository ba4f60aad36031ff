"""The informer of a controller: ``mfx.store.list_watch`` logging under the reconciler's name."""

from __future__ import annotations

import logging

from mfx.backoff import Backoff
from mfx.store.base import Store
from mfx.store.list_watch import EventCallback, ListWatch, RelistCallback, list_all

__all__ = ["EventCallback", "Informer", "RelistCallback", "list_all"]


class Informer(ListWatch):
    def __init__(
        self,
        store: Store,
        kind: str,
        *,
        on_event: EventCallback,
        on_relist: RelistCallback,
        logger: logging.Logger | None = None,
        retry_base: float = 0.05,
        retry_max: float = 5.0,
    ) -> None:
        super().__init__(
            store,
            kind,
            on_event=on_event,
            on_relist=on_relist,
            logger=logger or logging.getLogger(f"mfx.reconciler.informer.{kind}"),
            backoff=Backoff(initial=retry_base, cap=retry_max),
        )
