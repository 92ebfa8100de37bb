"""What each shipped policy saved (or deferred, or moved in time) in one claim period, as DuckDB SQL over the
registry's columns, following the policy's own rate (its summary in push/data/policies.json); {months} is the
period's length. `sales` is the period's sales, `vat` the VAT a taxpayer would pay on them without the relief,
`inputs` the creditable input VAT. These are the demo's stand-ins for the 减免税费额 of a real extract: the
bases (sales, taxable income, assets) come from the registry, which is an approximation, not a return.

Used by `push gen` and the demo through `services.synthetic_claim_rules`; a real extract carries its own
amounts (减免税费额, see `schema`).
"""

from __future__ import annotations

_SALES = "(CAST(monthly_sales AS DOUBLE) * {months})"
_TI = "greatest(CAST(taxable_income AS DOUBLE), 0)"
_VAT = f"({_SALES} * 0.03)"  # small-scale: the 3% 征收率; a general taxpayer's net VAT burden taken as 3% of sales
_INPUTS = f"({_SALES} * CASE WHEN manufacturing THEN 0.078 ELSE 0.03 END)"  # 13% on 60% / 6% on 50% bought in
_SURTAX = 0.12  # 城市维护建设税 7% (urban) + 教育费附加 3% + 地方教育附加 2%, of the VAT paid
_SMALL_VAT_PAID_2022 = f"(CASE WHEN vat_type = '小规模' THEN 0 ELSE {_VAT} END)"  # 3% sales exempt Apr–Dec 2022
_SMALL_VAT_PAID = f"(CASE WHEN vat_type = '小规模' THEN (CASE WHEN monthly_sales <= 100000 THEN 0 ELSE {_SALES} * 0.01 END) ELSE {_VAT} END)"


def _iit(income: str) -> str:
    """经营所得 tax on `income` (a year): 5% to 35% by the five brackets of the IIT law's schedule."""
    return (f"(CASE WHEN {income} <= 30000 THEN {income} * 0.05 WHEN {income} <= 90000 THEN {income} * 0.10 - 1500 "
            f"WHEN {income} <= 300000 THEN {income} * 0.20 - 10500 WHEN {income} <= 500000 THEN {income} * 0.30 - 40500 "
            f"ELSE {income} * 0.35 - 65500 END)")


_CIT_RATE = "(CASE WHEN high_tech THEN 0.15 ELSE 0.25 END)"
_DEFERRABLE = (f"(({_VAT} * {1 + _SURTAX} + {_TI} * 0.25 * {{months}} / 12) "
               "* CASE WHEN annual_revenue < 20000000 THEN 1 ELSE 0.5 END)")  # 小微 all, 中型 half
CLAIM_AMOUNTS = {
    # 小型微利企业: 25% statutory; ≤100万 at 5% (2019 rule), then 2.5% (2021–2022), 100–300万 at 10%, then 5%.
    "XWQY-CIT-2019": f"(0.20 * least({_TI}, 1000000) + 0.15 * greatest({_TI} - 1000000, 0))",
    "XWQY-CIT-2021": f"(0.025 * least({_TI}, 1000000))",  # the further halving of the ≤100万 part
    "XWQY-CIT-2022": f"(0.20 * least(greatest({_TI} - 1000000, 0), 2000000))",  # 100–300万 part: 25% → 5%
    "XWQY-CIT-2023": f"(0.20 * least({_TI}, 1000000))",  # ≤100万 part: 25% → 5%
    "XWQY-CIT-2027": f"(0.20 * least({_TI}, 3000000))",  # all of it: 25% → 5%
    # Small-scale VAT: exempt sales save their 3%; 3% reduced to 1% saves 2%.
    "XGM-VAT-2019": f"({_SALES} * 0.03)", "XGM-VAT-2021": f"({_SALES} * 0.03)",
    "XGM-VAT3-2022": f"({_SALES} * 0.03)", "XGM-VAT-2023": f"({_SALES} * 0.03)", "XGM-VAT-2027": f"({_SALES} * 0.03)",
    "XGM-VAT1-2023": f"({_SALES} * 0.02)", "XGM-VAT1-2027": f"({_SALES} * 0.02)",
    # 六税两费 halved: half the surtaxes on the VAT actually paid; half the property, land-use and stamp taxes
    # (buildings as 30% of assets, 70% of their value at 1.2% a year; stamp duty 0.03% of sales).
    "LSLF-FJ-2022": f"(0.5 * {_SURTAX} * {_SMALL_VAT_PAID_2022})",
    "LSLF-FJ-2023": f"(0.5 * {_SURTAX} * {_SMALL_VAT_PAID})",
    "LSLF-CXS-2022": "(0.5 * (CAST(total_assets AS DOUBLE) * 0.3 * 0.7 * 0.012 * {months} / 12 + " + _SALES + " * 0.0003))",
    "LSLF-CXS-2023": "(0.5 * (CAST(total_assets AS DOUBLE) * 0.3 * 0.7 * 0.012 * {months} / 12 + " + _SALES + " * 0.0003))",
    # 个体工商户: half the 经营所得 tax on the part of income up to 100万 (2021–2022) or 200万 (2023–2027).
    "GTH-IIT-2021": f"(0.5 * {_iit(_TI)} * least({_TI}, 1000000) / greatest({_TI}, 1))",
    "GTH-IIT-2023": f"(0.5 * {_iit(_TI)} * least({_TI}, 2000000) / greatest({_TI}, 1))",
    # R&D: a further 100% of the expense deducted, at the enterprise's CIT rate.
    "YFJJ-ZZY-2021": f"(CAST(rd_expense AS DOUBLE) * {_CIT_RATE})",
    "YFJJ-KJXZX-2022": f"(CAST(rd_expense AS DOUBLE) * {_CIT_RATE})",
    "YFJJ-2023": f"(CAST(rd_expense AS DOUBLE) * {_CIT_RATE})",
    # 加计抵减: 10% (生活性服务业 15%) of input VAT in 2022, 5% / 10% in 2023, 5% for advanced manufacturing.
    "JJDJ-2022": f"({_INPUTS} * CASE WHEN regexp_matches(industry, '^(H|O80|O82|P|Q|R88|R89|R90)') THEN 0.15 ELSE 0.10 END)",
    "JJDJ-SC-2023": f"({_INPUTS} * 0.05)", "JJDJ-SH-2023": f"({_INPUTS} * 0.10)", "XJZZ-JJDJ-2023": f"({_INPUTS} * 0.05)",
    "GXJS-CIT": f"(0.10 * {_TI})",  # 25% → 15%
    # Deferrals (kind "deferral"): the quarter's VAT with its surtaxes and CIT, all for 小微, half for 中型.
    "ZZY-HJ-2021": _DEFERRABLE, "ZZY-HJ-2022": _DEFERRABLE,
    # 教育费附加 3% + 地方教育附加 2% of the VAT paid (水利建设基金 varies by province and is left out).
    "JYFJ-MZ-2016": f"(0.05 * {_SMALL_VAT_PAID_2022})",
    "GJYS-VAT-2022": f"({_SALES} * 0.03)",  # public transport may use the 3% simple method
    # Timing (kind "timing"): equipment bought as 5% of assets, deducted at once instead of over 10 years:
    # 90% of it deducted early, at 25%, as far as there is income to deduct it from.
    "SBQJ-2018": f"(0.25 * least(CAST(total_assets AS DOUBLE) * 0.05 * 0.9, {_TI}))",
    "SBQJ-2021": f"(0.25 * least(CAST(total_assets AS DOUBLE) * 0.05 * 0.9, {_TI}))",
}
PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def claim_amount_sql(policy_id: str, period_kind: str) -> str | None:
    """The SQL amount of one claim of a shipped policy, or None for a policy without a formula here."""
    formula = CLAIM_AMOUNTS.get(policy_id)
    return formula.replace("{months}", str(PERIOD_MONTHS[period_kind])) if formula else None
