"""The load bench/survey_load.py puts on a questionnaire's open link: respondents opening the public answer page
(GET /s/{link}) and answering (POST /api/s/{link}, every question answered at random within its choices)."""

import json
import os
import random
import time

from locust import FastHttpUser, between, constant, events, task

LINK = os.environ["CHUNFENG_BENCH_LINK"]
THINK = float(os.environ.get("CHUNFENG_BENCH_THINK", "0"))  # seconds a respondent takes between page and answer
ACCEPTED: list[int] = []  # the id of every response answered 201
TIMED: list[tuple[float, str, float]] = []  # (seconds since the start, request name, ms) of every request
STARTED = time.monotonic()


@events.request.add_listener
def timed(name, response_time, **_):
    TIMED.append((time.monotonic() - STARTED, name, response_time))


@events.test_stop.add_listener
def save_accepted(**_):
    with open(os.environ["CHUNFENG_BENCH_ACCEPTED"], "w", encoding="utf-8") as fh:
        json.dump(ACCEPTED, fh)
    with open(os.environ["CHUNFENG_BENCH_ACCEPTED"] + ".timed", "w", encoding="utf-8") as fh:
        json.dump(TIMED, fh)


class Respondent(FastHttpUser):
    wait_time = between(THINK / 2, THINK * 1.5) if THINK else constant(0)

    def on_start(self):
        self.questions = self.client.get(f"/api/s/{LINK}").json()["questions"]

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
                ACCEPTED.append(sent.json()["response_id"])
