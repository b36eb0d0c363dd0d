"""Bulk work and the command line's engine: the journal (SQLite), its ledger, the batch.

Built on the core; the facade passes the journal-backed ledger into the core's scheduler.
It never imports the fleet (``_fleet``).
"""
