"""The filing season's load on the public front door (bench/public_load.py): questions to /api/consult, filings to
POST /api/appeals and the taxpayer's message centre (/push/inbox, signed in), spread over the server processes
named in CHUNFENG_BENCH_HOSTS (comma-separated base URLs), as a balancer would."""

import itertools
import json
import os
import random
import re

from locust import FastHttpUser, constant, events, task

HOSTS = os.environ["CHUNFENG_BENCH_HOSTS"].split(",")
_next_host = itertools.count()
QUESTIONS = ["个税汇算什么时候办", "小规模纳税人增值税征收率是多少", "出口退税多久能到账", "发票丢了怎么办",
             "个人所得税专项附加扣除有哪些", "怎么开具完税证明", "春风行动承诺出口退税要多少个工作日", "个体户怎么申报经营所得"]
COMPLAINTS = ["出口退税申报后很久没有到账,希望加快", "办税服务厅排队时间太长,窗口开得太少", "电子税务局申报期总是提示系统繁忙",
              "数电发票额度不够用,怎么申请调整", "12366热线一直占线打不进去", "建议周末开放办税服务厅"]
REGIONS = ["110101", "310104", "440300", "330106", "320102", "510104", ""]
ACCEPTED: list[int] = []  # the id of every filing answered 201


@events.test_stop.add_listener
def save_accepted(**_):
    with open(os.environ["CHUNFENG_BENCH_ACCEPTED"], "w", encoding="utf-8") as fh:
        json.dump(ACCEPTED, fh)


class Public(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def __init__(self, environment):
        self.host = HOSTS[next(_next_host) % len(HOSTS)]  # users spread evenly over the processes
        super().__init__(environment)


class Asker(Public):
    weight = 6

    @task
    def ask(self):
        with self.client.get("/api/consult", params={"q": random.choice(QUESTIONS)}, name="ask",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class Filer(Public):
    weight = 2

    @task
    def file(self):
        n = random.randrange(10**8)
        body = {"kind": random.choice(["complaint", "demand", "suggestion"]), "text": f"{random.choice(COMPLAINTS)}(#{n})",
                "region": random.choice(REGIONS), "phone": f"139{n:08d}"}
        with self.client.post("/api/appeals", json=body, name="file", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            else:
                ACCEPTED.append(response.json()["id"])


class Taxpayer(Public):
    weight = 2

    def on_start(self):
        page = self.client.get("/login", name="login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        self.client.post("/login", data={"username": os.environ["CHUNFENG_BENCH_TAXPAYER"],
                                         "password": os.environ["CHUNFENG_BENCH_PASSWORD"], "csrf_token": token,
                                         "next": "/push/inbox"}, name="login", allow_redirects=False)

    @task
    def inbox(self):
        with self.client.get("/push/inbox", name="inbox", catch_response=True, allow_redirects=False) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
