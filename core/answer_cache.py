"""A small memory of answers: the same review, language and models are answered once.

Why: a class told to paste one review sends the same text thirty times, and an example clicked twice should
not decode twice. Each Engine holds its own cache, so loading other models starts an empty one. Entries are the
engine's rows for one review (ratings, seed titles, map point, and the generator's titles once written): the
answer is rebuilt from them on every call, so a cached answer is the same answer, only faster.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Callable, Hashable, Iterable


class AnswerCache:
    """Bounded LRU, safe across the server's threads. `size` 0 keeps nothing. Keys are tuples whose second item is
    the review's text; answers to texts named in `keep` are held apart and never evicted."""

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._kept: dict[Hashable, object] = {}
        self._kept_texts: set[str] = set()
        self._running: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def keep(self, texts: Iterable[str]) -> None:
        """Never evict the answers to these texts: the page's examples, so a click on one stays instant however
        many classmates' reviews pass through the cache meanwhile."""
        with self._lock:
            self._kept_texts.update(texts)

    def put(self, key: Hashable, value) -> None:
        if not self.size:
            return
        value = copy.deepcopy(value)
        with self._lock:
            if isinstance(key, tuple) and len(key) > 1 and key[1] in self._kept_texts:
                self._kept[key] = value
                return
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def once(self, key: Hashable, compute: Callable[[], object]):
        """The stored value for `key`, else `compute()`'s, stored. Thirty classmates sending the same review at
        the same moment make one computation: the others wait for it instead of all missing at once."""
        if not self.size:
            return compute()
        while True:
            with self._lock:
                if key in self._kept:
                    self.hits += 1
                    return copy.deepcopy(self._kept[key])
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return copy.deepcopy(self._items[key])
                running = self._running.get(key)
                if running is None:
                    self._running[key] = threading.Event()
                    self.misses += 1
            if running is None:
                break
            running.wait()  # then read what it stored, or (if it failed) compute it here
        try:
            value = compute()
            self.put(key, value)
            return copy.deepcopy(value)
        finally:
            with self._lock:
                self._running.pop(key).set()

    def __len__(self) -> int:
        return len(self._items)
