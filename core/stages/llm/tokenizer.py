"""An LLM's tokenizer from its ``tokenizer.json`` alone, with the ``transformers`` tokenizer's ids and chat template.

Why: on the CTranslate2 path the tokenizer was the only reason to import ``transformers``, and
``AutoTokenizer.from_pretrained`` (import included) took 5-8 s of a cold ``m2t predict`` on 2 cores,
against ~1.4 s for ``tokenizers.Tokenizer.from_file`` on the same file. :class:`FastTokenizer` offers
the part of the transformers tokenizer interface this project uses (encode/decode, token↔id, the
special tokens, ``__call__``'s ``input_ids``, ``apply_chat_template``), and hands anything else to a
transformers tokenizer loaded on first such use.

Only where the files allow: a tokenizer folder whose ``tokenizer_config.json`` names a class and
settings known to leave ``tokenizer.json``'s own behaviour unchanged (:data:`PLAIN_CLASSES`,
:data:`PLAIN_KEYS`) gets a :class:`FastTokenizer`; any other folder keeps the transformers tokenizer
(:func:`load_tokenizer`). ``tests/test_stages_tokenizer.py`` checks ids, decoding and chat prompts
against transformers on the offline models' own tokenizers.

The chat template is rendered as transformers renders it: jinja2's immutable sandbox with
``trim_blocks``/``lstrip_blocks``, ``loopcontrols``, a ``tojson`` that does not escape HTML, the
``raise_exception``/``strftime_now`` helpers, ``{% generation %}`` blocks, and the special tokens as
template variables.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# tokenizer_config.json classes whose transformers tokenizer is tokenizer.json as it stands (checked in the tests).
PLAIN_CLASSES = frozenset({"GemmaTokenizer", "GemmaTokenizerFast", "TokenizersBackend", "PreTrainedTokenizerFast"})
# Keys that do not change ids or decoded text (clean_up_tokenization_spaces only when false: checked below).
PLAIN_KEYS = frozenset({
    *SPECIAL_TOKENS, "backend", "tokenizer_class", "is_local", "local_files_only", "model_max_length",
    "chat_template", "added_tokens_decoder", "model_input_names", "padding_side", "truncation_side",
    "clean_up_tokenization_spaces",
})


def _token_text(value: Any) -> str | None:
    """A special token as configs write it: a string, or an AddedToken dict with ``content``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(folder: Path, config: dict) -> str | None:
    """``chat_template.jinja`` (how transformers 5 saves it), else the config's template (its default if named)."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


def plain_config(config: dict) -> bool:
    """True when ``tokenizer.json`` alone gives the transformers tokenizer's ids and text for this config."""
    return (config.get("tokenizer_class") in PLAIN_CLASSES and set(config) <= PLAIN_KEYS
            and not config.get("clean_up_tokenization_spaces", False))


class FastTokenizer:
    """The transformers tokenizer interface this project uses, on the ``tokenizers`` library."""

    def __init__(self, folder: Path, config: dict) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.backend = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.init_kwargs = config
        for name in SPECIAL_TOKENS:
            setattr(self, name, _token_text(config.get(name)))
        self.chat_template = _chat_template(self.folder, config)
        self.padding_side = config.get("padding_side", "right")
        self.model_max_length = config.get("model_max_length")

    @classmethod
    def from_folder(cls, folder: str | Path) -> FastTokenizer | None:
        """The tokenizer of ``folder``, or ``None`` when its files ask for transformers' own handling."""
        folder = Path(folder)
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (folder / "tokenizer.json").is_file() or not isinstance(config, dict) or not plain_config(config):
            return None
        return cls(folder, config)

    def __repr__(self) -> str:
        return f"FastTokenizer({str(self.folder)!r}, vocab={len(self)})"

    # ---------------------------------------------------------------- tokens and ids

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | None | list[int | None]:
        """As transformers: an unknown token gives the unknown token's id (``None`` without one)."""
        if isinstance(tokens, str):
            found = self.backend.token_to_id(tokens)
            return found if found is not None else self.unk_token_id
        return [self.convert_tokens_to_ids(t) for t in tokens]  # type: ignore[misc]

    def convert_ids_to_tokens(self, ids: int | list[int]) -> str | None | list[str | None]:
        if isinstance(ids, int):
            return self.backend.id_to_token(ids)
        return [self.backend.id_to_token(i) for i in ids]

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def bos_token_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def eos_token_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def unk_token_id(self) -> int | None:
        return self._id(self.unk_token)

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: value for name in SPECIAL_TOKENS if (value := getattr(self, name)) is not None}

    # ---------------------------------------------------------------- text

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, text: str | list[str], add_special_tokens: bool = True) -> dict[str, Any]:
        """``{"input_ids": ..., "attention_mask": ...}`` for one text or a list, unpadded (as transformers)."""
        if isinstance(text, str):
            ids = self.encode(text, add_special_tokens)
            return {"input_ids": ids, "attention_mask": [1] * len(ids)}
        rows = [self.encode(t, add_special_tokens) for t in text]
        return {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, rows: list[list[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(r, skip_special_tokens) for r in rows]

    def apply_chat_template(self, conversation: list[dict], tokenize: bool = True, add_generation_prompt: bool = False,
                            **kwargs: Any) -> str | list[int]:
        """The chat as the model's template writes it (``tokenize=False``), or its ids (no special tokens added)."""
        if not self.chat_template:
            raise ValueError("this tokenizer has no chat template")
        messages = [{k: v for k, v in m.items() if v is not None} for m in conversation]
        text = _compile(self.chat_template).render(
            messages=messages, tools=kwargs.pop("tools", None), documents=kwargs.pop("documents", None),
            add_generation_prompt=add_generation_prompt, **{**self.special_tokens_map, **kwargs},
        )
        return self.encode(text, add_special_tokens=False) if tokenize else text

    # ---------------------------------------------------------------- everything else: transformers'

    @cached_property
    def transformers_tokenizer(self) -> Any:
        """The transformers tokenizer of the same folder, for the rare caller that needs more (training saves)."""
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(self.folder))
        for name in SPECIAL_TOKENS:  # settings made on this object (e.g. pad_token = eos_token) carry over
            if getattr(self, name) is not None and getattr(tok, name, None) != getattr(self, name):
                setattr(tok, name, getattr(self, name))
        tok.padding_side = self.padding_side
        return tok

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("backend", "folder", "init_kwargs"):
            raise AttributeError(name)
        return getattr(self.transformers_tokenizer, name)


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer of a model folder: :class:`FastTokenizer` where its files allow, else transformers'."""
    fast = FastTokenizer.from_folder(folder)
    if fast is not None:
        return fast
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


# --------------------------------------------------------------------------- chat templates

_TEMPLATES: dict[str, Any] = {}


def _compile(template: str) -> Any:
    """The template compiled once per process, in an environment like transformers' (see the module docstring)."""
    if template not in _TEMPLATES:
        _TEMPLATES[template] = _environment().from_string(template)
    return _TEMPLATES[template]


def _environment() -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """``{% generation %}…{% endgeneration %}`` marks assistant text for training masks: rendered as is."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller: Any) -> str:
            return caller()

    class Namespace(jinja2.utils.Namespace):
        """jinja's namespace without underscore attributes (no reach into Python internals), as transformers'."""

        def __init__(*args: Any, **kwargs: Any) -> None:
            self, rest = args[0], args[1:]
            attrs = dict(*rest, **kwargs)
            for name in attrs:
                Namespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name: Any) -> None:
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"chat templates cannot set {name!r} on a namespace")

    class TemplateDict:
        """``dict(...)`` for templates without handing them the ``dict`` class itself."""

        def __call__(self, *args: Any, **kwargs: Any) -> dict:
            return dict(*args, **kwargs)

        def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
            return dict.fromkeys(*args, **kwargs)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt),
                       dict=TemplateDict(), namespace=Namespace)
    return env
