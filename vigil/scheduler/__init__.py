"""The scheduled job: `vigil run` (one job, one folder) and `vigil schedule` (the long-running loop).

pipeline.py composes the stages through the CLI entry point; service.py decides when to run
them; lock.py, state.py, logs.py and metrics.py keep that boring, observable and safe.
"""
