"""What each route does between a parsed JSON body and the batcher: it reads and checks the fields, counts each
input's tokens (413 for too many inputs, or for an input longer than the model reads unless ``truncate`` is true),
submits the inputs, and shapes the answer as text-embeddings-inference does (fill-mask and NER as fastbert's
pipelines answer).

Everything here is plain Python over a ``submit(items, tokens)`` coroutine: the Ray Serve ingress gives it one that
calls a model replica, and the throughput benchmark one that calls a batcher in the same process.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Awaitable, Callable

from tokenizers import Tokenizer

from .. import __version__
from ..batching import Tokens
from ..errors import InputError
from . import fields
from .batcher import Overloaded
from .errors import BACKEND_FAILED, OVERLOADED, RequestError, malformed, too_large
from .settings import ServeSettings
from .tasks import Item, TaskSpec

Submit = Callable[[list[Item], list[int]], Awaitable[list]]

THREAD_FROM_CHARACTERS = 2048  # a request's characters from which it is tokenized in a worker thread
# text-embeddings-inference's names for the kinds of model, in /info
MODEL_TYPES = {"embed": "embedding", "rerank": "reranker", "classify": "classifier"}


@dataclass
class Answers:
    results: list        # one per input, in order
    tokens: list[int]    # tokens each input ran with


class Frontend:
    """The request handling of one served task; each method takes a request's JSON body and returns its answer, or
    raises RequestError."""

    def __init__(self, spec: TaskSpec, settings: ServeSettings, submit: Submit):
        self.spec = spec
        self.settings = settings
        self.submit = submit
        self.tokenizer = spec.tokenizer.backend
        self.tokenizer.no_truncation()  # whole inputs: their length decides 413 or truncation
        # where the model reads tokens, the inputs it runs: cut to its length as its own tokenizer cuts them
        self.reader = Tokenizer.from_str(self.tokenizer.to_str()) if spec.reads_tokens else None
        if self.reader is not None:
            self.reader.no_padding()
            self.reader.enable_truncation(spec.max_input_length)

    async def embed(self, body) -> list[list[float]]:
        """Each text's embedding, normalized unless ``normalize`` is false, after the prompt ``prompt_name`` names
        (default: the model's default prompt, if it has one)."""
        body = self._body(body, "embed", "/embed")
        texts, _ = fields.texts(body, "inputs")
        normalize = fields.flag(body, "normalize", True)
        prompt_name = fields.optional_text(body, "prompt_name")
        answers = await self._run(texts, (normalize,), truncate=fields.flag(body, "truncate", False),
                                  prefix=self._prompt(prompt_name))
        return [row.tolist() for row in answers.results]

    async def openai_embeddings(self, body) -> dict:
        """OpenAI's embeddings API: normalized embeddings, as floats or base64 of little-endian float32."""
        body = self._body(body, "embed", "/v1/embeddings")
        texts, _ = fields.texts(body, "input")
        encoding = fields.choice(body, "encoding_format", "float", ("float", "base64"))
        answers = await self._run(texts, (True,), truncate=False, prefix=self._prompt(None))
        data = [{"object": "embedding", "index": index, "embedding": (
            row.tolist() if encoding == "float" else base64.b64encode(row.astype("<f4").tobytes()).decode())}
            for index, row in enumerate(answers.results)]
        tokens = sum(answers.tokens)
        return {"object": "list", "data": data, "model": self.spec.model_id,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def rerank(self, body) -> list[dict]:
        """The texts' scores against the query, best first, each with its index among the texts."""
        body = self._body(body, "rerank", "/rerank")
        query = fields.text(body, "query")
        texts = fields.text_list(body, "texts")
        raw_scores = fields.flag(body, "raw_scores", False)
        return_text = fields.flag(body, "return_text", False)
        answers = await self._run([(query, text) for text in texts], (raw_scores,),
                                  truncate=fields.flag(body, "truncate", False), prefix=self._prompt(None))
        ranks = [{"index": index, "score": score, **({"text": texts[index]} if return_text else {})}
                 for index, score in enumerate(answers.results)]
        return sorted(ranks, key=lambda rank: rank["score"], reverse=True)  # stable: ties keep the texts' order

    async def predict(self, body) -> list:
        """Every label with its score, best first; for a batch, one such list per input."""
        body = self._body(body, "classify", "/predict")
        inputs, single = fields.sequences(body, "inputs")
        answers = await self._run(inputs, (fields.flag(body, "raw_scores", False),),
                                  truncate=fields.flag(body, "truncate", False))
        return answers.results[0] if single else answers.results

    async def fill_mask(self, body):
        """What ``fastbert.pipeline("fill-mask")`` answers for each text; for a list, one answer per text."""
        body = self._body(body, "fill-mask", "/fill-mask")
        texts, single = fields.texts(body, "inputs")
        top_k = fields.integer(body, "top_k", 5, minimum=1)
        answers = await self._run(texts, (top_k,), truncate=fields.flag(body, "truncate", False),
                                  check=self._check_masks)
        return answers.results[0] if single else answers.results

    async def ner(self, body):
        """The entities of each text, grouped as the token-classification pipeline's ``aggregation_strategy="simple"``
        groups them; for a list, one list per text."""
        body = self._body(body, "ner", "/ner")
        texts, single = fields.texts(body, "inputs")
        answers = await self._run(texts, (), truncate=fields.flag(body, "truncate", False))
        return answers.results[0] if single else answers.results

    async def tokenize(self, body) -> list[list[dict]]:
        """Each text's tokens: id, text, whether special, and (for the text's own tokens) character offsets."""
        body = fields.body_object(body)
        texts, _ = fields.texts(body, "inputs")
        self._check_count(texts)
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=fields.flag(body, "add_special_tokens", True))
        return [[{"id": token_id, "text": token, "special": True, "start": None, "stop": None} if special else
                 {"id": token_id, "text": text[start:stop], "special": False, "start": start, "stop": stop}
                 for token_id, token, special, (start, stop) in zip(
                     encoding.ids, encoding.tokens, encoding.special_tokens_mask, encoding.offsets)]
                for text, encoding in zip(texts, encodings)]

    def info(self) -> dict:
        spec, settings = self.spec, self.settings
        labels = {} if spec.labels is None else {
            "id2label": dict(enumerate(spec.labels)), "label2id": {label: i for i, label in enumerate(spec.labels)}}
        return {"model_id": spec.model_id, "model_sha": None, "model_dtype": spec.dtype,
                "model_type": {MODEL_TYPES.get(spec.task, spec.task): labels}, "task": spec.task, "device": spec.device,
                "max_concurrent_requests": settings.max_concurrent_requests, "max_input_length": spec.max_input_length,
                "max_batch_tokens": settings.max_batch_tokens, "max_batch_wait_ms": settings.max_batch_wait_ms,
                "max_batch_requests": None, "max_client_batch_size": settings.max_client_batch_size,
                "auto_truncate": False, "version": __version__}

    def _body(self, body, task: str, route: str) -> dict:
        if self.spec.task != task:
            raise RequestError(BACKEND_FAILED, "backend", f"{route} needs a model served with --task {task}; this "
                                                          f"server runs {self.spec.task}")
        return fields.body_object(body)

    def _check_count(self, inputs: list) -> None:
        if len(inputs) > self.settings.max_client_batch_size:
            raise too_large(f"batch size {len(inputs)} > maximum allowed batch size "
                            f"{self.settings.max_client_batch_size}")

    def _prompt(self, name: str | None) -> str:
        """The text the prompt ``name`` (None: the default prompt) puts before each input; "" without prompts."""
        if self.spec.prompts is None:
            if name is not None:
                raise malformed(f"`prompt_name` needs a model with prompts; this server runs {self.spec.task}")
            return ""
        try:
            return self.spec.prompts.resolve(None, name)
        except InputError as e:  # a name the model does not have
            raise malformed(str(e)) from None

    async def _run(self, inputs: list, options: tuple, *, truncate: bool, prefix: str = "", check=None) -> Answers:
        """Results of ``inputs`` from the batcher, once they pass the limits (and ``check(inputs, encodings)``).
        ``prefix``: the prompt the model will put before each text (a pair's first), counted in its tokens."""
        self._check_count(inputs)
        texts = [prefix + text if isinstance(text, str) else (prefix + text[0], text[1]) for text in inputs]
        encode = (self.reader or self.tokenizer).encode_batch
        # tokenizers release the GIL: in a worker thread, long requests tokenize side by side while the event loop
        # goes on; a short one tokenizes in less time than the hop to a thread takes
        characters = sum(len(text) if isinstance(text, str) else len(text[0]) + len(text[1]) for text in texts)
        encodings = await asyncio.to_thread(encode, texts) if characters >= THREAD_FROM_CHARACTERS else encode(texts)
        limit = self.spec.max_input_length
        tokens = []
        for index, encoding in enumerate(encodings):
            if (len(encoding) > limit or encoding.overflowing) and not truncate:
                whole = len(self.tokenizer.encode(*texts[index]) if isinstance(texts[index], tuple) else
                            self.tokenizer.encode(texts[index]))
                raise too_large(f"{_which(index, inputs)} has {whole} tokens, more than the {limit} this "
                                f"model reads: shorten it, or send `truncate: true` to cut it")
            tokens.append(min(len(encoding), limit))
        if check is not None:
            check(inputs, encodings)
        items = [Item(text, options, Tokens(encoding.ids, encoding.type_ids) if self.reader else None)
                 for text, encoding in zip(inputs, encodings)]
        try:
            results = await self.submit(items, tokens)
        except RequestError:
            raise
        except Overloaded as error:
            raise RequestError(OVERLOADED, "overloaded", str(error)) from None
        except Exception as error:  # noqa: BLE001 - the inference failed: the answer says so, the server goes on
            raise RequestError(BACKEND_FAILED, "backend", f"inference failed: {error}") from None
        return Answers(results, tokens)

    def _check_masks(self, texts: list[str], encodings) -> None:
        """The pipeline refuses a text without a mask token, or one whose truncation would cut a mask: refuse it
        here, before it joins a batch with other requests' texts."""
        mask, mask_id = self.spec.tokenizer.mask_token, self.spec.tokenizer.mask_token_id
        read = self.spec.max_input_length - 1  # truncation keeps the final special token
        for index, encoding in enumerate(encodings):
            masks, kept = encoding.ids.count(mask_id), encoding.ids[:read].count(mask_id)
            if masks and kept == masks:
                continue
            if masks:
                raise malformed(f"{_which(index, texts)}: {masks - kept} of its {masks} {mask} tokens lie past the "
                                f"first {read + 1} tokens, the most this model reads; move them earlier or shorten "
                                f"the text")
            raise malformed(f"{_which(index, texts)} has no mask token: write {mask} where the word to predict goes")


def _which(index: int, inputs: list) -> str:
    return "the input" if len(inputs) == 1 else f"input {index}"

