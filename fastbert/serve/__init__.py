"""``fastbert serve``: fastbert's task APIs behind an HTTP API that text-embeddings-inference clients speak.

The batching and request handling (``batcher``, ``frontend``, ``tasks``) are plain Python and run without Ray or an
HTTP server; ``api`` puts them behind FastAPI routes and ``app`` deploys them on Ray Serve. Importing this package
imports neither Ray nor FastAPI.
"""
