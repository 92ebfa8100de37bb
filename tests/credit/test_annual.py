"""The annual evaluation on a real database and a real DuckDB store: hand-made enterprises at each edge of the
score bands (5 points a late return, a sample awaiting review) get the level rules.json gives them, the rules'
exceptions are left out and counted, a second run writes only what changed, a year not yet over and a unit outside
the subtree are refused (the page: 403, audited as denied), every run is audited, and Spark decides the same levels."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, inspect, select, update

from chunfeng.credit import annual, evaluation
from chunfeng.credit import bulk as bulk_writer
from chunfeng.credit.errors import CreditInvalid
from chunfeng.credit.models import CreditRating, CreditRisk
from chunfeng.org.access import SystemActor
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry, Unit
from chunfeng.push import store
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, csrf_from, finished, login, person, serving
from tests.credit.test_evaluation import REGISTRY, _row
from tests.credit.test_services import code

TODAY = date(2026, 12, 7)
# late returns in 2025 → (score, level); revenue 0 makes 70 or more M (rules.json, evaluation.level_for)
EDGES = {0: (100.0, "A"), 2: (90.0, "A"), 3: (85.0, "B"), 6: (70.0, "B"), 7: (65.0, "C"), 12: (40.0, "C"),
         13: (35.0, "D")}
IDLE_70, IDLE_65 = code(40), code(41)  # no revenue: 6 and 7 late returns
NEW, SHOP, SILENT, NEIGHBOUR = code(50), code(51), code(52), code(53)


def edge_code(late: int) -> str:
    return code(20 + late)


def _filings(credit_code: str, late: int) -> str:
    """A year of monthly VAT returns, the first `late` filed after their deadline (months later), the rest on the
    5th of the next month (every deadline is the 15th or after); a 13th late one is a quarterly income-tax return."""
    rows = []
    for month in range(1, 13):
        if month <= late:
            year, filed_month = (2025, month + 2) if month <= 10 else (2026, month - 10)
            filed = f"{year}-{filed_month:02d}-28"
        else:
            filed = "2026-01-05" if month == 12 else f"2025-{month + 1:02d}-05"
        rows.append(f"{credit_code},增值税,2025-{month:02d},{filed}\n")
    if late > 12:
        rows.append(f"{credit_code},企业所得税,2025Q1,2025-06-30\n")
    return "".join(rows)


def write_extract(directory):
    directory.mkdir(parents=True, exist_ok=True)
    registry = [_row(edge_code(late), f"边界{late}有限公司", "一般纳税人", False) for late in EDGES]
    registry += [_row(IDLE_70, "无收入甲公司", "一般纳税人", False).replace(",1200000,", ",0,"),
                 _row(IDLE_65, "无收入乙公司", "一般纳税人", False).replace(",1200000,", ",0,"),
                 _row(NEW, "新设丙公司", "一般纳税人", False, registered="2025-06-01"),
                 _row(SHOP, "赵六便利店", "一般纳税人", True),
                 _row(SILENT, "静默丁公司", "一般纳税人", False),
                 _row(NEIGHBOUR, "邻县戊公司", "一般纳税人", False, region="110102")]
    (directory / "registry.csv").write_text(REGISTRY + "".join(registry), encoding="utf-8")
    (directory / "contacts.csv").write_text("credit_code,role,person,channel,address,opted_out\n", encoding="utf-8")
    (directory / "claims.csv").write_text("credit_code,policy,period,amount\n", encoding="utf-8")
    filings = [_filings(edge_code(late), late) for late in EDGES]
    filings += [_filings(IDLE_70, 6), _filings(IDLE_65, 7), _filings(NEW, 0), _filings(SHOP, 0), _filings(NEIGHBOUR, 1),
                f"{SILENT},增值税,2024-12,2025-01-10\n"]  # 2024's return only: nothing to evaluate 2025 on
    (directory / "filings.csv").write_text("credit_code,return_type,period,filed_on\n" + "".join(filings),
                                           encoding="utf-8")
    return directory


@pytest.fixture
def taxpayers(tmp_path):
    path = tmp_path / "store" / "taxpayers.duckdb"
    store.import_extract(write_extract(tmp_path / "extract"), path, workers=1)
    return path


@pytest.fixture
def people(bureau, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "county2_officer": ("110102", ["service_officer"]),
               "city_officer": ("110100", ["service_officer"]), "viewer2": ("110101", ["viewer"])})
    return bureau


def run(db, username, taxpayers, year=2025, unit_code=None, engine="duckdb"):
    with db.write() as s:
        actor = SystemActor() if username == "system" else person(s, username)
        return annual.evaluate_year(session=s, actor=actor, store=taxpayers, year=year, today=TODAY,
                                    unit_code=unit_code, engine=engine)


def register(db, year=2025) -> dict[str, tuple]:
    with db.read() as s:
        return {r.credit_code: (r.score, r.level, r.deductions, r.unit.code, r.imported_at)
                for r in s.scalars(select(CreditRating).where(CreditRating.year == year))}


def test_levels_at_each_band_edge_and_the_exceptions_left_out(people, taxpayers):
    db = people
    figures = run(db, "city_officer", taxpayers)
    got = register(db)
    for late, (score, level) in EDGES.items():
        assert got[edge_code(late)][:2] == (score, level), late
        assert evaluation.level_for(score, 1200000) == level  # the SQL bands are the voluntary evaluation's
        assert got[edge_code(late)][2] == ({"未按规定期限纳税申报": 5.0 * late} if late else {})
    assert got[IDLE_70][:2] == (70.0, "M") and got[IDLE_65][:2] == (65.0, "C")
    assert got[NEIGHBOUR][:2] == (95.0, "A") and got[NEIGHBOUR][3] == "110102"  # the competent county, in the city
    assert got[edge_code(0)][3] == "110101"
    assert not {NEW, SHOP, SILENT} & set(got)  # 第十五条; measure 115; no returns in the year (marked for review)
    assert figures["not_evaluated"] == {"individual_business": 1, "new": 1, "no_filings": 1}
    assert figures["evaluated"] == len(got) == 10 and figures["levels"] == {"A": 3, "B": 2, "C": 3, "D": 1, "M": 1}
    assert figures["written"] == {"inserted": 10, "updated": 0, "held_elsewhere": 0, "unchanged": 0}
    with db.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.annual.evaluated"))
        after = json.loads(entry.after)
        assert (entry.actor, entry.object_id, after["year"], after["unit"]) == ("city_officer", "2025:110100", 2025, "110100")
        assert after["written"]["inserted"] == 10 and after["engine"] == "duckdb"
        evaluation.publish_levels(session=s, store=taxpayers)
    with store.connect_store(taxpayers) as conn:  # the rules see the new year's levels
        assert conn.execute("SELECT credit_level, credit_year FROM registry WHERE credit_code = $c",
                            {"c": edge_code(13)}).fetchone() == ("D", 2025)


def test_a_second_run_writes_only_the_rows_whose_level_or_score_changed(people, taxpayers):
    db = people
    run(db, "county_officer", taxpayers)
    before = register(db)
    assert NEIGHBOUR not in before  # the county's run stays in its subtree
    with db.write() as s:  # an import had rated two of them otherwise
        s.execute(update(CreditRating).where(CreditRating.credit_code == edge_code(3)).values(level="A", score=91.0))
        s.execute(update(CreditRating).where(CreditRating.credit_code == edge_code(7)).values(score=66.0))
    figures = run(db, "county_officer", taxpayers)
    assert figures["written"] == {"inserted": 0, "updated": 2, "held_elsewhere": 0, "unchanged": 7}
    after = register(db)
    assert after[edge_code(3)][:2] == (85.0, "B") and after[edge_code(7)][:2] == (65.0, "C")
    changed = {edge_code(3), edge_code(7)}
    assert all(after[c][4] == before[c][4] for c in after if c not in changed)  # untouched rows were not rewritten
    assert all(after[c][4] > before[c][4] for c in changed)
    with db.read() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "credit.annual.evaluated")
                            .order_by(AuditEntry.id)).all()
        replaced = json.loads(entries[-1].after)["replaced_first"]
    # the old level and score are kept, as an import's re-evaluation keeps them
    assert replaced == [{"credit_code": edge_code(3), "before": ["A", 91.0], "after": ["B", 85.0]},
                        {"credit_code": edge_code(7), "before": ["C", 66.0], "after": ["C", 65.0]}]
    assert run(db, "county_officer", taxpayers)["written"]["unchanged"] == 9


def test_a_year_held_by_a_unit_outside_the_run_is_left(people, taxpayers):
    db = people
    run(db, "county2_officer", taxpayers)
    with db.write() as s:  # the neighbour's year is recorded by the other county (it moved)
        other = s.scalar(select(CreditRating).where(CreditRating.credit_code == NEIGHBOUR))
        other.credit_code = edge_code(0)
    figures = run(db, "county_officer", taxpayers)
    assert figures["written"]["held_elsewhere"] == 1 and figures["written"]["inserted"] == 8
    assert register(db)[edge_code(0)][3] == "110102"


def test_a_year_not_over_and_a_unit_outside_the_subtree_are_refused(people, taxpayers):
    db = people
    with pytest.raises(CreditInvalid, match="2026 年度尚未结束"):
        run(db, "county_officer", taxpayers, year=2026)
    with pytest.raises(Forbidden, match="管辖范围"):
        run(db, "county_officer", taxpayers, unit_code="110102")
    with pytest.raises(Forbidden):
        run(db, "viewer2", taxpayers)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 0
        assert not s.scalar(select(func.count()).select_from(AuditEntry)
                            .where(AuditEntry.action == "credit.annual.evaluated"))


def test_the_page_runs_it_as_a_task_and_refuses_another_subtree(people, taxpayers, _database, tmp_path):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(tmp_path / "files"),
                        push_store=str(taxpayers), rate_limits={}, rate_ceilings={}, totp_required_roles=[])
    with serving(_database, settings) as url:
        officer = login(url, "county_officer")
        page = officer.get("/credit")
        assert page.status_code == 200 and "年度集中评价" in page.text
        token = csrf_from(page.text)
        refused = officer.post("/credit/evaluate-year", data={"csrf_token": token, "year": "2025", "unit": "110102"})
        assert refused.status_code == 403 and "管辖范围" in refused.text
        early = officer.post("/credit/evaluate-year", data={"csrf_token": token, "year": "2026"})
        assert early.status_code == 400 and "尚未结束" in early.text
        started = officer.post("/credit/evaluate-year", data={"csrf_token": token, "year": "2025"})
        assert started.status_code == 303
        run_page = finished(officer, started)
        assert "评价 9 户" in run_page.text
        viewer = login(url, "viewer2")
        assert viewer.post("/credit/evaluate-year",
                           data={"csrf_token": csrf_from(viewer.get("/credit").text), "year": "2025"}).status_code == 403
    with people.read() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
        assert {(e.actor, e.object_id) for e in denied} >= {("county_officer", "POST /credit/evaluate-year"),
                                                          ("viewer2", "POST /credit/evaluate-year")}
        assert register(people)[edge_code(13)][1] == "D"
    with store.connect_store(taxpayers) as conn:  # published for the rules when the task ended
        assert conn.execute("SELECT credit_level FROM registry WHERE credit_code = $c",
                            {"c": edge_code(13)}).fetchone() == ("D",)


def test_spark_decides_the_same_levels_as_duckdb(people, taxpayers):
    """The engine setting (credit_risk_engine=spark): the same SQL translated for Spark, the same register rows."""
    db = people
    results = {}
    for engine in ("duckdb", "spark"):
        with db.write() as s:
            s.execute(CreditRating.__table__.delete())
        figures = run(db, "system", taxpayers, engine=engine)
        results[engine] = ({k: v for k, v in figures.items() if k != "engine"},
                           {c: r[:4] for c, r in register(db).items()})
    assert results["duckdb"] == results["spark"] and len(results["spark"][1]) == 10


def test_the_command_line(people, taxpayers):
    from tests.credit.test_cli import cli

    db = people
    refused = cli(db, "--as", "county_officer", "credit", "evaluate-year", "--year", "2025", "--unit", "110102",
                  push_store=taxpayers)
    assert refused.returncode == 1 and "管辖范围" in refused.stderr
    done = cli(db, "--as", "county_officer", "credit", "evaluate-year", "--year", "2025", push_store=taxpayers)
    assert done.returncode == 0, done.stderr
    assert "2025 年度评价 9 户" in done.stdout and "新增 9 条" in done.stdout
    with db.read() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.outcome == "denied")).object_type == "command"
    with store.connect_store(taxpayers) as conn:  # published for the rules
        assert conn.execute("SELECT credit_level FROM registry WHERE credit_code = $c",
                            {"c": edge_code(7)}).fetchone() == ("C",)


def test_a_first_run_into_an_empty_year_writes_the_same_rows_in_bulk(people, taxpayers):
    """Into an empty register (SQLite: straight into it, its indexes built again after), into a register holding only
    another year (straight into it, indexes kept), and into a year already holding a stale row (the temporary table
    and INSERT … SELECT): the same rows, and the register keeps every index."""
    db = people
    run(db, "city_officer", taxpayers)
    into_empty = register(db)
    with db.write() as s:
        s.execute(update(CreditRating).values(year=2024))
    run(db, "city_officer", taxpayers)
    beside_another_year = register(db)
    with db.write() as s:
        s.execute(CreditRating.__table__.delete().where(CreditRating.year == 2025, CreditRating.credit_code != edge_code(3)))
        s.execute(update(CreditRating).where(CreditRating.credit_code == edge_code(3)).values(level="A", score=91.0))
    figures = run(db, "city_officer", taxpayers)
    assert figures["written"] == {"inserted": 9, "updated": 1, "held_elsewhere": 0, "unchanged": 0}
    into_a_held_year = register(db)
    assert len(into_empty) == 10 and len(register(db, 2024)) == 10

    def rows(register):
        return {c: values[:4] for c, values in register.items()}

    assert rows(into_empty) == rows(beside_another_year) == rows(into_a_held_year)
    with db.read() as s:
        indexes = {i["name"] for i in inspect(s.connection()).get_indexes(CreditRating.__tablename__)}
    assert {i.name for i in CreditRating.__table__.indexes} <= indexes


def test_a_national_run_reads_the_stored_year_from_one_index(people):
    db = people
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    with db.read() as s:
        national = s.scalar(select(Unit).where(Unit.code == SystemActor().unit_code))
        query = annual.stored_query(national, 2025, True, s.get_bind().dialect)
        plan = " ".join(str(row[-1]) for row in s.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
    assert "USING COVERING INDEX ix_credit_rating_year_levels" in plan, plan


def test_a_first_run_that_fails_while_writing_leaves_the_register_empty_and_indexed(people, taxpayers, monkeypatch):
    """The first run's bulk write on SQLite drops the indexes the rows do not arrive in the order of and keeps the
    others; a run that fails half-way through its rows leaves the register as it was — empty, every index there —
    and the next run writes the same rows as one into an indexed register."""
    db = people
    monkeypatch.setattr(bulk_writer, "BULK_BATCH", 3)  # several batches from the fixture's ten rows,
    monkeypatch.setattr(bulk_writer, "ROWS_A_STATEMENT", 2)  # each with whole statements of rows and one left over
    with db.read() as s:
        declared = {i["name"] for i in inspect(s.connection()).get_indexes(CreditRating.__tablename__)}

    def failing(done, total, message):
        if message.startswith("正在写入") and done:  # after the first batch: SQLite's indexes are dropped by then
            raise RuntimeError("the run failed while writing")

    with pytest.raises(RuntimeError), db.write() as s:
        annual.evaluate_year(session=s, actor=person(s, "city_officer"), store=taxpayers, year=2025, today=TODAY,
                             progress=failing)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 0
        assert {i["name"] for i in inspect(s.connection()).get_indexes(CreditRating.__tablename__)} == declared
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "credit.annual.evaluated")) == 0

    messages = []
    with db.write() as s:
        annual.evaluate_year(session=s, actor=person(s, "city_officer"), store=taxpayers, year=2025, today=TODAY,
                             progress=lambda done, total, message: messages.append(message))
    bulk = register(db)
    assert ("正在建立索引" in messages) == db.is_sqlite
    with db.write() as s:  # the same run into a register already holding another year: no index dropped
        s.execute(update(CreditRating).values(year=2024))
    run(db, "city_officer", taxpayers)
    assert {c: v[:4] for c, v in register(db).items()} == {c: v[:4] for c, v in bulk.items()} and len(bulk) == 10
    with db.read() as s:
        assert {i["name"] for i in inspect(s.connection()).get_indexes(CreditRating.__tablename__)} == declared


def test_only_the_indexes_the_rows_do_not_arrive_in_the_order_of_are_rebuilt():
    """Rows in credit-code order, one year: appended to (credit_code, year, …) and (year, credit_code, …); the
    level's and the unit's indexes, and the risk tiers' (tier, unit), are dropped and built again."""
    fixed = {"year": 2025, "imported_at": None}
    assert [i.name for i in bulk_writer.out_of_order(CreditRating.__table__, fixed)] == [
        "ix_credit_rating_level", "ix_credit_rating_unit_id"]
    assert [i.name for i in bulk_writer.out_of_order(CreditRisk.__table__, {"computed_at": None})] == [
        "ix_credit_risk_tier", "ix_credit_risk_unit_id"]


@pytest.mark.parametrize("points", [0.0, 5.0, 2.5, 65.0])
def test_the_deductions_are_the_json_object_the_register_keeps(points):
    """Joined as text inside DuckDB: the same JSON object as before — the indicators that deducted, by name."""
    import duckdb

    (name,) = [i["name"] for i, _ in annual._indicators()]
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE evaluated AS SELECT CAST({points} AS DOUBLE) AS d0")
        (text,) = conn.execute(f"SELECT {annual.deductions_sql('e')} FROM evaluated AS e").fetchall()[0]
    assert json.loads(text) == ({name: points} if points else {})
