"""Counting tokens on the client, when the server's answer has no usage: a local Hugging Face
``tokenizer.json`` (``--tokenizer``, read with the ``tokenizers`` package; nothing is fetched from a
hub), counted as ``len(encode(text, add_special_tokens=False).ids)``, the rule the emulator and
most servers' usage follow for a prompt's text.

Import-light (``tokenizers`` only when a file is given): the master checks the file before anything
is spawned.
"""

from __future__ import annotations

import os

from smload.usage import UsageError

OPTION = "--tokenizer"


class TokenCounter:
    """One tokenizer file, loaded once per process."""

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise UsageError(
                OPTION,
                f"{path!r} does not exist: give a local tokenizer.json (Hugging Face "
                "tokenizers format; nothing is downloaded)",
            )
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise UsageError(
                OPTION, "needs the tokenizers package: pip install 'sagemaker-loadtest[llm]'"
            ) from None
        try:
            self._tokenizer = Tokenizer.from_file(path)
        except Exception as err:  # noqa: BLE001 - the library raises its own exception types
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UsageError(OPTION, f"cannot read {path!r} as a tokenizer.json: {first}") from None
        self.path = path
        self._encode = self._tokenizer.encode

    def count(self, text: str) -> int:
        return len(self._encode(text, add_special_tokens=False).ids) if text else 0

    def single_token_words(self, words: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``words`` (each with its leading space) that are one token alone and stay one
        token each when repeated: synthetic prompts of an exact length are made of them."""
        out = tuple(w for w in words if self.count(w) == 1)
        while out and self.count("".join(out) * 2) != 2 * len(out):
            out = out[:-1]
        return out
