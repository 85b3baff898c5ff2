"""Stop strings: end generation where one appears, keeping ``text`` and ``token_ids`` in agreement.

Generation stops at the first stop string in the decoded text. The result keeps the tokens that
end before it, so ``decode(token_ids) == text``: when the stop string starts inside a token, that
whole token goes (its text before the stop with it). While streaming, text that could still
turn out to be the start of a stop string is held back, and only text made of whole tokens is
sent, so every chunk sent is part of the final text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def find_stop(text: str, stops: Sequence[str], new_from: int) -> int | None:
    """Earliest index where a stop string starts, looking only where new text could complete one."""
    best = None
    for s in stops:
        i = text.find(s, max(0, new_from - len(s) + 1))
        if i >= 0 and (best is None or i < best):
            best = i
    return best


def pending_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that a stop string starts with (may yet complete it)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


class StopText:
    """Tracks decoded text per step; says where to stop and how much text is safe to stream.

    ``decode`` maps token ids to text (the detokenizer). Call :meth:`push` with each step's new
    tokens (end-of-sequence tokens excluded).
    """

    def __init__(self, decode: Callable[[Sequence[int]], str], stops: Sequence[str]) -> None:
        self._decode = decode
        self.stops = list(stops)
        self.ids: list[int] = []
        self.text = ""  # the decoded text of ``ids`` (or, after a stop, of the kept tokens)
        self.sent = 0  # characters already streamed
        self.stopped = False
        self._bounds = [0]  # text length after each step: whole-token boundaries

    def push(self, ids: Sequence[int]) -> str:
        """Add a step's tokens; return the text now safe to stream (possibly empty).

        Text that ends in an incomplete multi-byte character (U+FFFD) is held back from that
        character on, never as a whole: the complete text before it streams now, and
        :meth:`finish` sends whatever is left when generation ends.
        """
        self.ids.extend(ids)
        full = self._decode(self.ids)
        before = len(self.text)
        self.text = full
        complete = len(full.rstrip("\ufffd"))
        hit = find_stop(full[:complete], self.stops, before) if self.stops else None
        if hit is not None:
            self._cut(hit)
            self.stopped = True
            return self._take(len(self.text))
        if not self.stops:
            return self._take(complete)
        if complete == len(full):  # a whole-token boundary whose text is final
            self._bounds.append(len(full))
        limit = complete - pending_prefix(full[:complete], self.stops)
        return self._take(max(b for b in self._bounds if b <= limit))

    def finish(self) -> str:
        """The text not streamed yet, at the end of generation (then ``text`` is all sent)."""
        return self._take(len(self.text))

    def _cut(self, hit: int) -> None:
        """Keep the longest run of tokens whose text ends at or before ``hit``."""
        keep = len(self.ids)
        text = self.text
        while keep and (len(text) > hit or not self.text.startswith(text)):
            keep -= 1
            text = self._decode(self.ids[:keep])
        del self.ids[keep:]
        self.text = text

    def _take(self, upto: int) -> str:
        chunk = self.text[self.sent : upto] if upto > self.sent else ""
        self.sent = max(self.sent, upto)
        return chunk
