"""Tokens as the emulator counts and writes them, by a rule a client can repeat exactly.

Prompt tokens: the prompt's text (docs/emulator-llm.md, "Prompt tokens": the ``content`` strings of
chat messages, or the ``inputs`` string, concatenated without separators) counted either by a
Hugging Face ``tokenizer.json`` (``tokenizers``; ``encode(text, add_special_tokens=False)``) or, with
none configured, as ``ceil(characters / chars_per_token)`` (Unicode code points), at least 1.

Output tokens: generated text is a cycle of words that each count as exactly one token under the same
rule: ``chars_per_token`` characters each without a tokenizer, single vocabulary entries with one.
So a client that counts the text it received with the same rule finds the server's count.
"""

from __future__ import annotations

import math

# Words the generated text cycles through (a space before each, as BPE vocabularies store them).
_WORDS = (
    "the",
    "and",
    "of",
    "to",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "at",
    "by",
    "be",
    "this",
    "are",
    "or",
    "from",
    "an",
    "but",
    "not",
    "all",
    "can",
    "had",
    "her",
    "one",
    "our",
    "out",
    "you",
)
_CYCLE = 16


class TokenizerError(Exception):
    """The configured tokenizer cannot be used (not installed, unreadable, or no one-token words)."""


class Tokens:
    """Counts a prompt's tokens and supplies the text of generated tokens (a cycle of ``pieces``)."""

    def __init__(self, chars_per_token: int = 4, tokenizer_path: str | None = None) -> None:
        self.chars_per_token = chars_per_token
        self._tokenizer = None
        if tokenizer_path is None:
            self.pieces = tuple(_chars_piece(word, chars_per_token) for word in _WORDS[:_CYCLE])
            return
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TokenizerError("the tokenizers package is not installed (pip install tokenizers)") from None
        try:
            self._tokenizer = Tokenizer.from_file(tokenizer_path)
        except Exception as exc:  # the library raises its own Exception types
            raise TokenizerError(f"cannot load {tokenizer_path}: {exc}") from None
        self.pieces = self._single_token_pieces()
        if not self.pieces:
            raise TokenizerError(f"{tokenizer_path}: none of the emulator's words is a single token in it")

    def count(self, text: str) -> int:
        """The number of tokens of a prompt (at least 1: an empty prompt still takes a step to prefill)."""
        if self._tokenizer is not None:
            return max(1, len(self._tokenizer.encode(text, add_special_tokens=False).ids))
        return max(1, math.ceil(len(text) / self.chars_per_token))

    def text(self, n: int) -> str:
        """The text of the first ``n`` generated tokens."""
        pieces = self.pieces
        whole, rest = divmod(n, len(pieces))
        return "".join(pieces) * whole + "".join(pieces[:rest])

    def _single_token_pieces(self) -> tuple[str, ...]:
        """Words that encode to one token alone and stay one token each when repeated (so that a
        stream's concatenated text re-encodes to as many tokens as were sent)."""
        encode = self._tokenizer.encode
        chosen: list[str] = []
        for word in _WORDS:
            piece = " " + word
            if len(encode(piece, add_special_tokens=False).ids) == 1:
                chosen.append(piece)
            if len(chosen) == _CYCLE:
                break
        while chosen:
            text = "".join(chosen) * 2
            if len(encode(text, add_special_tokens=False).ids) == 2 * len(chosen):
                return tuple(chosen)
            chosen.pop()
        return ()


def _chars_piece(word: str, size: int) -> str:
    """``word`` with a space before it, cut or padded with its last letter to exactly ``size`` characters."""
    piece = (" " + word)[:size]
    return piece + piece[-1] * (size - len(piece))
