"""What the admin notebooks share: the data source, and the DuckDB SQL asked of the ledger.

    source = analysis.choose_source(os.environ)  # AIPIPE_USAGE | AIPIPE_URL + token | demo
    con = analysis.connect(source)               # in-memory DuckDB over the export
    analysis.spend_by_day(con)                   # → pandas DataFrame

Each query lives here once; notebooks import it rather than copy SQL between them.
"""

from relay.analysis.anomalies import (
    failure_bursts,
    failure_rates,
    hourly_profile,
    off_hours_users,
    rare_models,
    user_hour_spikes,
    user_hourly,
)
from relay.analysis.models import (
    cost_sources,
    cost_sources_by_day,
    model_costs,
    outcomes_by_provider,
    stream_outcomes,
)
from relay.analysis.source import (
    DEMO_ROWS,
    Source,
    SourceError,
    choose_source,
    connect,
    fetch_export,
)
from relay.analysis.spend import (
    budget_suggestions,
    budget_use,
    domain_cohorts,
    domain_weekly,
    limit_hits,
    peak_use,
    spend_by_day,
    spend_by_model,
    spend_by_provider,
    spend_concentration,
    summary,
    top_users,
)

__all__ = [
    "DEMO_ROWS",
    "Source",
    "SourceError",
    "budget_suggestions",
    "budget_use",
    "choose_source",
    "connect",
    "cost_sources",
    "cost_sources_by_day",
    "domain_cohorts",
    "domain_weekly",
    "failure_bursts",
    "failure_rates",
    "fetch_export",
    "hourly_profile",
    "limit_hits",
    "model_costs",
    "off_hours_users",
    "outcomes_by_provider",
    "peak_use",
    "rare_models",
    "spend_by_day",
    "spend_by_model",
    "spend_by_provider",
    "spend_concentration",
    "stream_outcomes",
    "summary",
    "top_users",
    "user_hour_spikes",
    "user_hourly",
]
