"""What the task pipelines share: the model with the head their task reads, the tokenizer, the batch size, and
options given when the pipeline is made, which stand for each call's defaults as in transformers."""

from __future__ import annotations

from ..batching import check_batch_size, default_batch_size
from ..errors import CheckpointError
from ..model import FastBert
from ..tokenizer import TextTokenizer


class TaskPipeline:
    """A task's pipeline. A call takes ``batch_size`` (texts per forward pass) and ``progress``, called with the
    number of sequences each forward pass ran, besides the task's options."""

    task: str
    head: str                         # the head the task reads (``fastbert.heads``)
    needs: str                        # what the task needs of a checkpoint, for the error when the head differs
    loads_head: str | None = None     # ``head=`` a checkpoint is loaded with for the task; None: what config.json says
    default_model: str | None = None  # the checkpoint ``fastbert.pipeline`` loads when given none

    def __init__(self, model: FastBert, tokenizer: TextTokenizer, *, batch_size: int | None = None, **options):
        """``options``: defaults for every call's options (a call's own override them)."""
        if model.head_name != self.head:
            raise CheckpointError(f"model {getattr(model, 'name_or_path', '')!r} has a {model.head_name} head; "
                             f"{self.task} {self.needs}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = check_batch_size(default_batch_size(model.device) if batch_size is None else batch_size)
        self.options(options)  # a bad default is refused now rather than at the first call
        self.defaults = options

    def options(self, given: dict):
        """The options of a call, checked, as the task's options dataclass."""
        raise NotImplementedError

    def call_options(self, given: dict):
        return self.options({**self.defaults, **given})

    def call_batch_size(self, batch_size: int | None) -> int:
        return check_batch_size(self.batch_size if batch_size is None else batch_size)

    @property
    def positions(self) -> int:
        """The most tokens one sequence may have."""
        return self.model.config.max_sequence_length
