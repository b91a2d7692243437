"""nebula performance benchmarks (issue 7): ``python -m benchmarks [names]``; see docs/performance.md."""
