"""fastbert's benchmark harness: fastbert against transformers and torch.compile on the same weights and inputs.

Entry points: ``python -m benchmarks.run`` (every section, results under benchmarks/results/),
``python -m benchmarks.bench_ops`` (kernel micro-benchmarks) and ``python -m benchmarks.report``
(markdown, plots and the README section from a results JSON).
"""
