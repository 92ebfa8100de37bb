"""The load the intake benchmark puts on `POST /api/appeals`: taxpayers filing demands and complaints."""

import json
import os
import random

from locust import FastHttpUser, constant, events, task

TEXTS = ["出口退税申报后很久没有到账,希望加快", "办税服务厅排队时间太长,窗口开得太少", "电子税务局申报期总是提示系统繁忙",
         "数电发票额度不够用,怎么申请调整", "12366热线一直占线打不进去", "建议周末开放办税服务厅"]
REGIONS = ["110101", "310104", "440300", "330106", "320102", "510104", ""]
ACCEPTED: list[int] = []  # the id of every item the API answered 201 for


@events.test_stop.add_listener
def save_accepted(**_):
    with open(os.environ["CHUNFENG_BENCH_ACCEPTED"], "w", encoding="utf-8") as fh:
        json.dump(ACCEPTED, fh)


class Taxpayer(FastHttpUser):
    wait_time = constant(0)

    @task
    def file(self):
        n = random.randrange(10**8)
        body = {"kind": random.choice(["complaint", "demand", "suggestion"]), "text": f"{random.choice(TEXTS)}(#{n})",
                "region": random.choice(REGIONS), "phone": f"139{n:08d}"}
        with self.client.post("/api/appeals", json=body, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            else:
                ACCEPTED.append(response.json()["id"])
