"""The office's 合计 and Excel file over 5,000 units × the 40-field 晋城 statistics table.

Loads the 晋城 2023 campaign, inserts N units in bulk, each with a registered liaison, a filled
liaison table (8 fields), a submitted statistics table (all 40 fields: 4 header lines, 35 counts of
which every 50th is an estimate, 1 text) and a reminder; then times

- 合计: ``StoredFacts.totals`` (a GROUP BY over the answers of the submitted tables read from an
  index, in the database: bot/store/totals.py), the median of several runs, and the chat's whole
  reply rendered from it (handlers/totals.py);
- the xlsx: ``bot.exports.workbook.export_campaign`` reading everything (a few set-wise queries)
  and writing the workbook with openpyxl in write-only mode, to a file.

    .venv/bin/python benchmarks/aggregate.py [--units 5000] [--database-url URL | --postgres]

Prints both figures and the method. Targets: 合计 ≤ 100 ms, the xlsx ≤ 3 s on two cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.campaigns import FieldType, load_definition, load_into_db  # noqa: E402
from bot.exports.workbook import UNIT_SHEETS_UP_TO, export_campaign  # noqa: E402
from bot.store.engine import make_engine, upgrade  # noqa: E402
from bot.store.facts import DatabaseFacts  # noqa: E402
from bot.store.models import Answer, Deadline, Delivery, Person, Role, Submission, Unit, table_of  # noqa: E402
from bot.texts import Texts  # noqa: E402
from handlers.totals import items, statistics_form, summed_keys  # noqa: E402

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2023, 7, 2, 10, 0, tzinfo=BEIJING)
SUBMITTED_AT = datetime(2023, 6, 28, 10, 0, tzinfo=BEIJING)
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def prepare(database_url: str, units: int) -> tuple[sa.Engine, int, int]:
    """A migrated database with the campaign and N units' tables; (engine, campaign id, statistics deadline id)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    definition = load_definition(ROOT / "campaigns" / "jincheng-commerce-2023.toml")
    campaign_id = load_into_db(engine, definition).campaign_id
    form, liaison_form = definition.form("statistics"), definition.liaison_form()
    assert liaison_form is not None
    with engine.begin() as conn:
        deadlines = {r.key: r.id for r in conn.execute(sa.select(table_of(Deadline).c.key, table_of(Deadline).c.id))}
        conn.execute(sa.insert(table_of(Unit)), [
            {"campaign_id": campaign_id, "name": f"单位{n:05d}", "group": "", "join_code": f"B{n:07d}",
             "liaison_mobile": "", "created_at": SUBMITTED_AT} for n in range(units)])
        unit_ids = conn.execute(sa.select(table_of(Unit).c.id).order_by(table_of(Unit).c.id)).scalars().all()
        conn.execute(sa.insert(table_of(Person)), [
            {"openid": f"o_bench_{n:06d}", "name": f"联络员{n}", "role": Role.LIAISON.value, "unit_id": unit_id,
             "following": True, "created_at": SUBMITTED_AT} for n, unit_id in enumerate(unit_ids)])
        for key, fields in (("statistics", form.answer_fields()), ("liaison", liaison_form.fields)):
            conn.execute(sa.insert(table_of(Submission)), [
                {"unit_id": unit_id, "deadline_id": deadlines[key], "period": "", "status": "submitted", "late": False,
                 "submitted_at": SUBMITTED_AT, "submitted_by": f"o_bench_{n:06d}", "updated_at": SUBMITTED_AT}
                for n, unit_id in enumerate(unit_ids)])
            submissions = conn.execute(sa.select(table_of(Submission).c.id).where(
                table_of(Submission).c.deadline_id == deadlines[key]).order_by(table_of(Submission).c.unit_id)).scalars().all()
            rows = []
            for n, submission_id in enumerate(submissions):
                for i, f in enumerate(fields):
                    number = (n + i) % 300 if f.type is FieldType.COUNT else None
                    rows.append({"submission_id": submission_id, "field_key": f.answer_key,
                                 "value": str(number) if number is not None else f"{f.label}{n}", "number": number,
                                 "approximate": number is not None and (n + i) % 50 == 0, "updated_by": "bench",
                                 "updated_at": SUBMITTED_AT})
            conn.execute(sa.insert(table_of(Answer)), rows)
        conn.execute(sa.insert(table_of(Delivery)), [
            {"key": f"reminder:o_bench_{n:06d}:{deadlines['statistics']}::due", "openid": f"o_bench_{n:06d}",
             "kind": "reminder", "channel": "template", "payload": {}, "status": "sent", "attempts": 1,
             "unit_id": unit_id, "deadline_id": deadlines["statistics"], "period": "", "stage": "due",
             "local_day": "2023-07-01", "created_at": SUBMITTED_AT} for n, unit_id in enumerate(unit_ids)])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
    return engine, campaign_id, deadlines["statistics"]


def measure(engine: sa.Engine, campaign_id: int, deadline_id: int, workdir: Path,
            units: int) -> tuple[float, float, float, float, float]:
    """(合计's query in ms, the whole 合计 reply in ms, its CPU time in ms, the xlsx in s, its CPU time in s).

    CPU time is this process's (on SQLite that includes the database's work): on a machine shared
    with other work it says what the wall-clock figures would be on an idle one."""
    texts = Texts()
    with engine.connect() as conn:
        facts = DatabaseFacts(conn)
        form = statistics_form(facts.definition(campaign_id))
        assert form is not None
        facts.totals(deadline_id, "", summed_keys(form))  # a first run warms the connection and the database's caches
        queries, replies, cpu = [], [], []
        for _ in range(7):
            started, started_cpu = time.perf_counter(), time.process_time()
            totals = facts.totals(deadline_id, "", summed_keys(form))
            queries.append(time.perf_counter() - started)
            texts.render("totals", title=form.title, totals=totals, items=items(form, totals), estimated=0)
            replies.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        assert totals.submitted == units and all(t.answered == units for t in totals.fields.values())
        started, started_cpu = time.perf_counter(), time.process_time()
        export_campaign(conn, campaign_id, NOW, workdir / "export.xlsx")
        written, written_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return (statistics.median(queries) * 1000, statistics.median(replies) * 1000, statistics.median(cpu) * 1000,
            written, written_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on 127.0.0.1:5432, dropped after")
    args = parser.parse_args()

    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT") if args.postgres else None
    name = f"safetybot_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/aggregate.db"
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            database_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        try:
            started = time.perf_counter()
            engine, campaign_id, deadline_id = prepare(database_url, args.units)
            prepared = time.perf_counter() - started
            query_ms, reply_ms, reply_cpu_ms, xlsx_s, xlsx_cpu_s = measure(engine, campaign_id, deadline_id, Path(tmp),
                                                                          args.units)
            size = (Path(tmp) / "export.xlsx").stat().st_size
            engine.dispose()
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(f"{engine.dialect.name}: {args.units} units × 40-field statistics table "
          f"({args.units * 40} answers, plus {args.units * 8} liaison-table answers), inserted in {prepared:.1f} s")
    print(f"合计: {query_ms:.1f} ms for the sums (a GROUP BY over the submitted tables' answers, median of 7), "
          f"{reply_ms:.1f} ms with the reply rendered ({reply_cpu_ms:.1f} ms CPU)   [target ≤ 100 ms]")
    print(f"xlsx: {xlsx_s:.2f} s ({xlsx_cpu_s:.2f} s CPU), {size / 1e6:.1f} MB (set-wise reads, openpyxl write-only; "
          f"per-unit sheets only up to {UNIT_SHEETS_UP_TO} units, every unit a row of 报送情况)   [target ≤ 3 s]")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if query_ms <= 100 and xlsx_s <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
