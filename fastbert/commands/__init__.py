"""The task commands, one module each. A module's ``register(commands)`` adds its subparser to the ``fastbert``
command's, with ``run`` set to the function that carries it out."""

from . import classify, embed, ner, rerank, serve

COMMANDS = (classify, embed, ner, rerank, serve)
