"""The Airflow DAG that tests/test_airflow.py runs against a real `datatrail serve` (see docs/deploy.md).

orders.csv -> load_sqlite -> shop.db -> export_report -> report.csv; summarize runs SQL on the
SQLite file through a connection; write_never names an output and fails before writing it.
Files are declared as Airflow assets (inlets/outlets), which the OpenLineage provider reports.
SHOP_DATA is the folder holding orders.csv; the connection `shop_db` points at shop.db.
"""

import csv
import os
import sqlite3
from datetime import datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset

DATA = os.environ["SHOP_DATA"]
ORDERS, DB, REPORT, NEVER = (
    os.path.join(DATA, n) for n in ("orders.csv", "shop.db", "report.csv", "never_written.txt")
)


def load_sqlite() -> None:
    with open(ORDERS, newline="") as f:
        rows = [(r["id"], r["customer"], float(r["amount"])) for r in csv.DictReader(f)]
    with sqlite3.connect(DB) as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT, amount REAL)")
        db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?)", rows)


def export_report() -> None:
    with sqlite3.connect(DB) as db:
        rows = db.execute("SELECT customer, SUM(amount) FROM orders GROUP BY customer ORDER BY customer").fetchall()
    with open(REPORT, "w", newline="") as f:
        csv.writer(f).writerows([("customer", "total"), *rows])


def write_never() -> None:
    msg = "the upstream export is not ready: nothing written"
    raise RuntimeError(msg)


with DAG("shop", start_date=datetime(2026, 12, 1), schedule=None, catchup=False, doc_md="Orders to a report."):
    load = PythonOperator(
        task_id="load_sqlite",
        python_callable=load_sqlite,
        inlets=[Asset(f"file://{ORDERS}")],
        outlets=[Asset(f"file://{DB}")],
        doc_md="Loads the orders into SQLite.",
    )
    summarize = SQLExecuteQueryOperator(
        task_id="summarize",
        conn_id="shop_db",
        sql="CREATE TABLE IF NOT EXISTS totals AS SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer",
    )
    export = PythonOperator(
        task_id="export_report",
        python_callable=export_report,
        inlets=[Asset(f"file://{DB}")],
        outlets=[Asset(f"file://{REPORT}")],
    )
    never = PythonOperator(
        task_id="write_never",
        python_callable=write_never,
        outlets=[Asset(f"file://{NEVER}")],
        retries=0,
    )
    load >> [summarize, export]
