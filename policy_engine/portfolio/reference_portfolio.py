"""The tuned synthetic portfolio of the reference policy's client record, of any size.

For demos, load tests and benchmarks: the same seed gives the same portfolio, byte for byte,
as it has since the first release (tests and benchmarks depend on it). Clients are drawn per
industry with correlated stress (a stressed client has falling revenue, thinner margins, more
leverage, more overdue days), so every grade, warning and action of the reference policy occurs
in a large sample.

This module is sample data for one record layout, not engine logic: the engine itself names no
policy's fields (a test scans for them and allows this file only). ``generate -p POLICY`` draws
a portfolio for any policy from its declared inputs (``synthetic.generate_policy_columns``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from .quarters import quarter_ends

INDUSTRIES = ("manufacturing", "trade", "technology", "construction", "energy", "other")
INDUSTRY_WEIGHTS = (0.32, 0.24, 0.12, 0.14, 0.10, 0.08)
QUARTER_FIELDS = ("period_end", "revenue", "cost_of_sales", "net_income", "operating_cash_flow", "ebitda",
                  "interest_expense", "debt_service", "current_assets", "current_liabilities", "inventory",
                  "receivables", "total_assets", "total_liabilities", "equity")
GRADES = ("pass", "special_mention", "substandard", "doubtful", "loss")


def generate_columns(n: int, seed: int = 7, as_of: str = "2025-06-30", quarters: int = 4) -> dict[str, Any]:
    """The portfolio as flat columns (numpy arrays or lists), vectorised so a million rows take seconds."""
    rng = np.random.default_rng(seed)
    day = dt.date.fromisoformat(as_of)
    stress = rng.beta(2.0, 5.0, n)  # 0 healthy .. 1 distressed
    industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_WEIGHTS)
    cols: dict[str, Any] = {
        "client_id": np.array([f"S{seed:03d}-{i:07d}" for i in range(n)], dtype=object),
        "as_of": np.full(n, as_of, dtype=object),
        "industry": np.array(INDUSTRIES, dtype=object)[industry],
        "internal_rating": np.clip(np.rint(1 + stress * 9 + rng.normal(0, 1, n)), 1, 10).astype(np.int64),
        "key_client": rng.random(n) < 0.15,
        "exporter": rng.random(n) < 0.25,
        "tech_startup": (np.array(INDUSTRIES, dtype=object)[industry] == "technology") & (rng.random(n) < 0.5),
    }
    size = np.exp(rng.normal(17.5, 1.0, n))  # quarterly revenue, CNY
    ends = quarter_ends(day, quarters)
    margin0 = 0.08 - 0.12 * stress
    for k in range(quarters):
        trend = 1.0 - stress * 0.08 * k  # stressed clients shrink toward the latest quarter
        revenue = np.maximum(size * trend * rng.normal(1.0, 0.05, n), 0.0)
        margin = margin0 - stress * 0.03 * k + rng.normal(0, 0.02, n)
        total_assets = size * rng.normal(3.0, 0.3, n).clip(1.5)
        debt_ratio = np.clip(0.35 + 0.6 * stress + rng.normal(0, 0.08, n), 0.05, 1.4)
        current_liabilities = total_assets * rng.uniform(0.2, 0.4, n)
        current_ratio = np.clip(1.9 - 1.3 * stress + rng.normal(0, 0.2, n), 0.2, 4.0)
        ebitda = revenue * (margin + 0.06)
        debt_service = revenue * rng.uniform(0.04, 0.09, n)
        prefix = f"financials[{k}]."
        cols[prefix + "period_end"] = np.full(n, ends[k], dtype=object)
        cols[prefix + "revenue"] = np.round(revenue)
        cols[prefix + "cost_of_sales"] = np.round(revenue * np.clip(0.78 + 0.15 * stress, 0, 1.2))
        cols[prefix + "net_income"] = np.round(revenue * margin)
        cols[prefix + "operating_cash_flow"] = np.round(revenue * (margin + rng.normal(0.02, 0.04, n)))
        # About 1% of the latest quarters miss their EBITDA: missing data must show as such.
        cols[prefix + "ebitda"] = np.where((k == quarters - 1) & (rng.random(n) < 0.01), np.nan, np.round(ebitda))
        cols[prefix + "interest_expense"] = np.round(revenue * rng.uniform(0.01, 0.04, n))
        cols[prefix + "debt_service"] = np.round(debt_service)
        cols[prefix + "current_assets"] = np.round(current_liabilities * current_ratio)
        cols[prefix + "current_liabilities"] = np.round(current_liabilities)
        cols[prefix + "inventory"] = np.round(current_liabilities * current_ratio * rng.uniform(0.2, 0.45, n))
        cols[prefix + "receivables"] = np.round(revenue * rng.uniform(0.15, 0.9, n))
        cols[prefix + "total_assets"] = np.round(total_assets)
        cols[prefix + "total_liabilities"] = np.round(total_assets * debt_ratio)
        cols[prefix + "equity"] = cols[prefix + "total_assets"] - cols[prefix + "total_liabilities"]
    overdue = rng.random(n) < 0.05 + 0.5 * stress ** 2
    dpd = np.where(overdue, rng.integers(1, 420, n) * stress, 0).astype(np.int64)
    collateral0 = size * rng.uniform(1.0, 3.0, n)
    balance = size * rng.uniform(0.3, 1.0, n)
    cols.update({
        "loan.balance": np.round(balance),
        "loan.days_past_due": dpd,
        "loan.technical_overdue": (dpd > 0) & (dpd <= 7) & (rng.random(n) < 0.3),
        "loan.rate": np.round(0.035 + 0.03 * stress, 4),
        "loan.fair_rate": np.round(0.04 + 0.02 * stress, 4),
        "loan.collateral_value": np.round(collateral0 * (1 - 0.35 * stress * rng.random(n))),
        "loan.collateral_value_at_origination": np.round(collateral0),
        "loan.refinanced_old_with_new": rng.random(n) < 0.02 + 0.1 * stress,
        "loan.purpose_changed_unapproved": rng.random(n) < 0.01,
        "exposure.nonperforming_share_at_bank": np.where(rng.random(n) < 0.1 * stress, np.round(rng.random(n), 3), 0.0),
        "exposure.overdue_90_share_all_banks": np.where(dpd > 90, np.round(rng.random(n) * 0.5, 3), 0.0),
        "exposure.nonperforming_elsewhere": rng.random(n) < 0.2 * stress,
        "restructuring.restructured": rng.random(n) < 0.05 * stress,
        "restructuring.observation_start": np.full(n, (day - dt.timedelta(days=200)).isoformat(), dtype=object),
        "restructuring.periods_repaid": rng.integers(0, 4, n),
        "restructuring.nonperforming_before": rng.random(n) < 0.3,
        "restructuring.restructured_again_after_nonpayment": rng.random(n) < 0.05,
        "history.previous_grade": np.array(GRADES, dtype=object)[
            np.clip((stress * 5 + rng.normal(0, 0.7, n)).astype(int), 0, 4)],
        "history.arrears_repaid": rng.random(n) < 0.7,
        "history.consecutive_normal_payments": rng.integers(0, 12, n),
        "history.months_normal_payment": rng.integers(0, 36, n),
        "events.key_person_missing": rng.random(n) < 0.01 * stress,
        "events.assets_seized": rng.random(n) < 0.02 * stress,
        "events.litigation": rng.random(n) < 0.08 * stress,
        "events.major_customer_lost": rng.random(n) < 0.1 * stress,
        "events.repayment_willingness_declining": rng.random(n) < 0.2 * stress,
        "events.government_support_available": rng.random(n) < 0.3,
    })
    return cols
