"""Usage storage: the ledger of requests and the per-day spend that budgets read.

`Store` (buffered.py) keeps rows and day totals in memory and writes them in batches to a `Ledger`:
the DuckDB file (duckdb_ledger.py), run in process or in the store worker (worker.py).
"""

from relay.store.base import COLUMN_NAMES, LedgerError, LedgerRow, StoreLocked
from relay.store.buffered import Store

__all__ = ["COLUMN_NAMES", "LedgerError", "LedgerRow", "Store", "StoreLocked"]
