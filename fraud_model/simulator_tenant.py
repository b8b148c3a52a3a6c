"""A tenant-shaped simulator: the handbook's transactions plus devices, IP countries and e-mail
domains, with three fraud patterns that only those attributes reveal.

On top of :func:`fraud_model.simulator.simulate` (scenarios 1-3 keep their labels) each card gets
a home country, one or two devices and an e-mail domain; legitimate transactions use them (with
a little travel and device change). Then, on legitimate transactions, with amounts and terminals
untouched (so the handbook's features cannot tell them apart):

- scenario 4, a device farm: fraud devices each used by 5-12 cards within a day;
- scenario 5, a taken-over card: for two days a card is used from another country on a new device;
- scenario 6, a burst of new e-mail domains: domains first seen that day, each shared by several
  cards' transactions, with accounts a few days old.

Their daily counts scale with the number of cards (Poisson; see the *_CARDS_PER_DAY constants).

Also a frame shaped like the public PCA credit-card dataset (``Time``, ``V1``..``V28``, ``Amount``,
``Class``) and its mapping to our schema, for passthrough feature sets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_model import schema as s
from fraud_model.simulator import simulate

COUNTRIES = ("FR", "DE", "ES", "IT", "BE", "NL", "PT", "GB", "IE", "PL", "SE", "US")
DOMAINS = ("gmail.com", "yahoo.fr", "orange.fr", "outlook.com", "gmx.de", "web.de", "free.fr", "icloud.com")
TENANT_ATTRIBUTES = ("device_id", "ip_country", "card_country", "email_domain", "account_age_days")
# Per day, one device farm per FARM_CARDS_PER_DAY cards of the portfolio (Poisson), and so on.
FARM_CARDS_PER_DAY = 2_000
TAKEOVER_CARDS_PER_DAY = 1_000
NEW_DOMAIN_CARDS_PER_DAY = 2_500
PCA_COMPONENTS = 28
TENANT_SCENARIO = "tenant_scenario"  # 0 legitimate, 1-3 the handbook's, 4-6 this profile's


def simulate_tenant(
    n_customers: int, n_terminals: int, n_days: int, *, seed: int = 0, intensity: float = 1.0
) -> pd.DataFrame:
    """Simulated transactions with tenant attributes and scenarios 4-6 (their daily rates times
    ``intensity``); deterministic per seed."""
    base = simulate(n_customers, n_terminals, n_days, seed=seed)
    rng = np.random.default_rng(seed + 1_000_003)
    n = len(base)
    card = base[s.CARD_TOKEN].str.removeprefix(s.CARD_PREFIX).astype(np.int64).to_numpy()
    day = (s.epoch_seconds(base[s.TS]) - s.epoch_seconds(base[s.TS]).min()) // 86_400
    home = rng.integers(0, len(COUNTRIES), n_customers)
    domain = rng.choice(
        len(DOMAINS),
        n_customers,
        p=np.linspace(2.0, 0.5, len(DOMAINS)) / np.linspace(2.0, 0.5, len(DOMAINS)).sum(),
    )
    age = rng.integers(30, 3_650, n_customers)
    second = rng.random(n) < 0.15
    device = np.where(second, "dev_" + (card * 2 + 1).astype(str), "dev_" + (card * 2).astype(str)).astype(
        object
    )
    travel = rng.random(n) < 0.03
    ip_country = np.asarray(COUNTRIES, dtype=object)[
        np.where(travel, rng.integers(0, len(COUNTRIES), n), home[card])
    ]
    email = np.asarray(DOMAINS, dtype=object)[domain[card]]
    account_age = (age[card] + day).astype(np.float64)
    scenario = base[s.FRAUD_SCENARIO].to_numpy().copy()
    legit = scenario == 0
    by_day = [np.flatnonzero(legit & (day == d)) for d in range(n_days)]
    for d, rows in enumerate(by_day):
        if len(rows) < 100:
            continue
        # Scenario 4: a fraud device used by many (stolen) cards within the day.
        for k in range(int(rng.poisson(intensity * n_customers / FARM_CARDS_PER_DAY))):
            hit = rng.choice(rows, size=int(rng.integers(5, 13)), replace=False)
            device[hit] = f"farm_{d}_{k}"
            scenario[hit] = 4
        # Scenario 5: cards suddenly used from another country on a new device (two days).
        candidates = np.unique(card[rows])
        count = min(int(rng.poisson(intensity * n_customers / TAKEOVER_CARDS_PER_DAY)), len(candidates))
        for c in rng.choice(candidates, size=count, replace=False):
            rows_c = np.flatnonzero((card == c) & (day >= d) & (day < d + 2) & (scenario == 0))
            if not len(rows_c):
                continue
            away = (home[c] + int(rng.integers(1, len(COUNTRIES)))) % len(COUNTRIES)
            ip_country[rows_c] = COUNTRIES[away]
            device[rows_c] = f"tko_{c}_{d}"
            scenario[rows_c] = 5
        # Scenario 6: fresh e-mail domains, each shared by several cards, on new accounts.
        free = rows[scenario[rows] == 0]
        for k in range(int(rng.poisson(intensity * n_customers / NEW_DOMAIN_CARDS_PER_DAY))):
            hit = rng.choice(free, size=min(int(rng.integers(4, 9)), len(free)), replace=False)
            email[hit] = f"mail{d}x{k}.top"
            account_age[hit] = rng.integers(0, 4, len(hit))
            scenario[hit] = 6
    out = base.copy()
    out["device_id"] = pd.Series(device, dtype="str")
    out["ip_country"] = pd.Series(ip_country, dtype="str")
    out["card_country"] = pd.Series(np.asarray(COUNTRIES, dtype=object)[home[card]], dtype="str")
    out["email_domain"] = pd.Series(email, dtype="str")
    out["account_age_days"] = account_age
    # fraud_scenario keeps the handbook's 0..3 (what dataset validation accepts); all of them here.
    out[s.FRAUD_SCENARIO] = np.where(scenario <= 3, scenario, 0)
    out[TENANT_SCENARIO] = scenario
    out[s.IS_FRAUD] = (scenario > 0).astype(np.int64)
    return out


def simulate_pca_creditcard(
    n_rows: int, *, seed: int = 0, fraud_rate: float = 0.0017, days: int = 2
) -> pd.DataFrame:
    """A frame with the public PCA credit-card dataset's columns: Time, V1..V28, Amount, Class.

    Fraud rows are shifted along a few components (as in the real data, where V14, V12, V10
    and V17 separate frauds best); Time counts seconds from the first transaction over ``days``
    (two in the public dataset; more, so the training protocol has weeks to split).
    """
    rng = np.random.default_rng(seed)
    y = (rng.random(n_rows) < fraud_rate).astype(np.int64)
    v = (
        rng.normal(0.0, 1.0, (n_rows, PCA_COMPONENTS))
        / np.sqrt(np.arange(1, PCA_COMPONENTS + 1))[None, :]
        * 2
    )
    shift = np.zeros(PCA_COMPONENTS)
    shift[[13, 11, 9, 16, 3]] = (-6.0, -5.0, -4.5, -4.0, 3.0)
    v[y == 1] += shift * rng.uniform(0.3, 1.2, (int(y.sum()), 1))
    frame = pd.DataFrame(v, columns=[f"V{i}" for i in range(1, PCA_COMPONENTS + 1)])
    frame.insert(0, "Time", np.sort(rng.integers(0, days * 86_400, n_rows)).astype(np.float64))
    frame["Amount"] = np.round(rng.lognormal(3.0, 1.3, n_rows), 2)
    frame["Class"] = y
    return frame


def pca_to_schema(raw: pd.DataFrame, *, start: str = "2013-09-01") -> pd.DataFrame:
    """The PCA frame in our schema: one pseudo-card and terminal per row, V1..V28 kept as attributes."""
    n = len(raw)
    ids = np.arange(n)
    out = pd.DataFrame(
        {
            s.TXN_ID: s.prefixed_ids(s.TXN_PREFIX, ids),
            s.CARD_TOKEN: s.prefixed_ids(s.CARD_PREFIX, ids),
            s.TERMINAL_ID: s.prefixed_ids(s.TERMINAL_PREFIX, ids % 997),
            s.TS: s.to_utc(
                pd.Series(pd.Timestamp(start, tz="UTC") + pd.to_timedelta(raw["Time"].to_numpy(), unit="s"))
            ),
            s.AMOUNT: raw["Amount"].to_numpy(dtype=np.float64),
            s.CURRENCY: pd.Series(["EUR"] * n, dtype="str"),
            s.IS_FRAUD: raw["Class"].to_numpy(dtype=np.int64),
        }
    )
    for i in range(1, PCA_COMPONENTS + 1):
        out[f"v{i}"] = raw[f"V{i}"].to_numpy(dtype=np.float64)
    return out


def pca_passthrough_document() -> dict[str, object]:
    """A feature set that passes the 28 components and the amount straight to the model."""
    attributes = {f"v{i}": {"type": "numeric", "required": True} for i in range(1, PCA_COMPONENTS + 1)}
    features = [{"name": "amount", "kind": "passthrough", "attribute": "amount"}] + [
        {"name": f"pca_v{i}", "kind": "passthrough", "attribute": f"v{i}", "label": f"PCA component V{i}"}
        for i in range(1, PCA_COMPONENTS + 1)
    ]
    return {"name": "pca", "attributes": attributes, "features": features}


def tenant_document(timezone: str = "Europe/Paris") -> dict[str, object]:
    """A tenant set over the simulator's attributes: device, IP-country and e-mail features."""

    def vel(name: str, entity: object, aggregate: str, window: str, **extra: object) -> dict[str, object]:
        return {
            "name": name,
            "kind": "velocity",
            "entity": entity,
            "aggregate": aggregate,
            "window": window,
            **extra,
        }

    return {
        "name": "device-email",
        "timezone": timezone,
        "delay_days": 7,
        "attributes": {
            "device_id": {"type": "identifier", "required": False},
            "ip_country": {"type": "country", "required": False},
            "card_country": {"type": "country", "required": True},
            "email_domain": {"type": "categorical", "required": False},
            "account_age_days": {"type": "numeric", "required": False, "min": 0, "max": 36500},
        },
        "features": [
            {"name": "amount", "kind": "passthrough", "attribute": "amount"},
            {"name": "local_hour", "kind": "calendar", "part": "hour"},
            {"name": "local_weekend", "kind": "calendar", "part": "weekend"},
            vel("card_nb_tx_1h", "card_token", "count", "1h"),
            vel("card_nb_tx_1d", "card_token", "count", "1d"),
            vel("card_avg_amount_30d", "card_token", "mean", "30d"),
            vel("card_amount_sum_1d", "card_token", "sum", "1d"),
            vel("card_amount_to_avg_30d", "card_token", "amount_ratio", "30d"),
            vel("card_secs_since_prev", "card_token", "since_previous", "30d"),
            vel(
                "card_nb_high_amount_14d",
                "card_token",
                "count",
                "14d",
                where={"feature": "card_amount_to_avg_30d", "op": ">", "value": 3.0},
            ),
            vel("card_countries_7d", "card_token", "distinct", "7d", of="ip_country"),
            vel("card_devices_30d", "card_token", "distinct", "30d", of="device_id"),
            vel(
                "card_tx_from_ip_country_30d",
                ["card_token", "ip_country"],
                "count",
                "30d",
                label="Card's transactions from this IP country in 30 days",
            ),
            vel("card_tx_on_device_30d", ["card_token", "device_id"], "count", "30d"),
            vel(
                "device_cards_1d",
                "device_id",
                "distinct",
                "1d",
                of="card_token",
                label="Cards seen on this device in the last 24 hours",
            ),
            vel("device_cards_7d", "device_id", "distinct", "7d", of="card_token"),
            vel("device_nb_tx_1d", "device_id", "count", "1d"),
            vel("device_secs_since_prev", "device_id", "since_previous", "7d"),
            {"name": "device_risk_30d", "kind": "label_risk", "entity": "device_id", "window": "30d"},
            vel(
                "email_domain_cards_1d",
                "email_domain",
                "distinct",
                "1d",
                of="card_token",
                label="Cards using this e-mail domain in the last 24 hours",
            ),
            vel("email_domain_nb_tx_30d", "email_domain", "count", "30d"),
            {
                "name": "email_domain_risk_30d",
                "kind": "label_risk",
                "entity": "email_domain",
                "window": "30d",
            },
            {
                "name": "email_domain_enc",
                "kind": "categorical",
                "attribute": "email_domain",
                "encoding": "target",
            },
            {
                "name": "email_domain_share",
                "kind": "categorical",
                "attribute": "email_domain",
                "encoding": "frequency",
            },
            {
                "name": "ip_country_mismatch",
                "kind": "compare",
                "left": "ip_country",
                "op": "!=",
                "right": "card_country",
                "label": "IP country differs from the card's country",
            },
            {"name": "account_age", "kind": "passthrough", "attribute": "account_age_days"},
            {"name": "new_account", "kind": "compare", "left": "account_age_days", "op": "<", "value": 7},
            {"name": "terminal_risk_7d", "kind": "label_risk", "entity": "terminal_id", "window": "7d"},
            {
                "name": "terminal_nb_tx_30d",
                "kind": "label_risk",
                "entity": "terminal_id",
                "window": "30d",
                "stat": "count",
            },
            {
                "name": "many_cards_on_device",
                "kind": "compare",
                "left": "device_cards_1d",
                "op": ">=",
                "value": 3,
            },
        ],
    }
