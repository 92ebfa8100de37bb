"""The load bench/survey_load.py puts on a questionnaire's open link: respondents opening the public answer page
(GET /s/{link}) and answering (POST /api/s/{link}, every question answered at random within its choices), spread
over the server processes named in CHUNFENG_BENCH_HOSTS (comma-separated base URLs), as a balancer would."""

import itertools
import json
import os
import random
import time

import gevent
from locust import FastHttpUser, between, constant, events, task

LINK = os.environ["CHUNFENG_BENCH_LINK"]
HOSTS = os.environ["CHUNFENG_BENCH_HOSTS"].split(",")
THINK = float(os.environ.get("CHUNFENG_BENCH_THINK", "0"))  # seconds a respondent takes between page and answer
# Locust starts its spawn rate's users together once a second; each waits a random part of that second first, so
# respondents arrive one by one at that rate, as people opening a message do.
SPREAD = float(os.environ.get("CHUNFENG_BENCH_SPREAD", "0"))
_next_host = itertools.count()
STARTED = time.monotonic()
# What survey_load.py reads back, in seconds since the start: when each respondent arrived (the last, once locust's
# spawning is complete, is where its --reset-stats would reset), each request (its end, name, ms, failed) and each
# answer accepted (its end, the response id).
RECORD: dict = {"arrived": [], "requests": [], "accepted": []}


@events.request.add_listener
def timed(name, response_time, exception=None, **_):
    RECORD["requests"].append((time.monotonic() - STARTED, name, response_time, exception is not None))


@events.test_stop.add_listener
def save(**_):
    with open(os.environ["CHUNFENG_BENCH_RECORD"], "w", encoding="utf-8") as fh:
        json.dump(RECORD, fh)


class Respondent(FastHttpUser):
    wait_time = between(THINK / 2, THINK * 1.5) if THINK else constant(0)

    def __init__(self, environment):
        self.host = HOSTS[next(_next_host) % len(HOSTS)]  # respondents spread evenly over the processes
        super().__init__(environment)

    def on_start(self):
        gevent.sleep(random.uniform(0, SPREAD))
        RECORD["arrived"].append(time.monotonic() - STARTED)
        self.questions = self.client.get(f"/api/s/{LINK}", name="questions").json()["questions"]

    def answers(self) -> dict:
        out = {}
        for q in self.questions:  # answers to questions the skip logic hides are dropped by the server
            if q["kind"] == "text":
                out[q["code"]] = random.choice(["希望延长服务时间", "排队时间太长", "电子税务局很方便"])
            elif q["kind"] == "multi":
                out[q["code"]] = random.sample(q["choices"], 1)
            elif q["choices"]:
                out[q["code"]] = random.choice(q["choices"])
        return out

    @task
    def answer(self):
        with self.client.get(f"/s/{LINK}", name="page", catch_response=True) as page:
            if page.status_code != 200:
                page.failure(f"{page.status_code}")
        with self.client.post(f"/api/s/{LINK}", json={"answers": self.answers()}, name="answer",
                              catch_response=True) as sent:
            if sent.status_code != 201:
                sent.failure(f"{sent.status_code}: {sent.text[:200]}")
            else:
                RECORD["accepted"].append((time.monotonic() - STARTED, sent.json()["response_id"]))
