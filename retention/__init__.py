"""Retention: policy -> inventory -> plan -> apply -> verify, with a hash-chained ledger.

inventory.py streams what the stores hold; decide.py and plan.py (pure) say what is due;
apply.py does it and writes ledger.py's lines; verify.py re-reads (RET-02); engine.py runs
it all for `vigil retain`; resume.py picks up after a crash.
"""
