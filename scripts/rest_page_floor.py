"""The REST page-transfer floor: how long an `mlflow server` takes to hand over the candidate runs
of every backbone when the client does nothing with them (bytes read, not parsed).

Usage: python scripts/rest_page_floor.py BASE_URL [--config-dir config] [--experiment NAME]
                                          [--page-size 50000] [--concurrent-pages 1]

The project is read as podium reads it (scripts/select_python.py `load_project`). One thread per
backbone, as `podium select` does, each on its own keep-alive connection, posting `runs/search`
with the candidate queries of champion selection in their fallback order (stage `hpo_trial`
with `code.backbone`, `hpo_trial`, `hpo` with `code.backbone`, `hpo`; FINISHED) until one returns runs,
and reading that one's pages to the end. With `--concurrent-pages K > 1`
each backbone asks for K pages at once (offsets p·page_size; MLflow's SQL store page token is
base64 of `{"offset": N}`), wave after wave until a page comes back without a next token: the
experiment of "smaller concurrent pages versus one big page". Prints one JSON line.
"""

import argparse
import base64
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from select_python import (candidate_filters, hpo_experiment_name, load_project,  # noqa: E402
                           short_name)

TOKEN = re.compile(rb'"next_page_token"\s*:\s*"([^"]*)"')


class Connection:
    def __init__(self, base_url):
        parsed = urllib.parse.urlsplit(base_url)
        self.prefix = parsed.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port or 80,
                                                     timeout=600)

    def post(self, endpoint, body):
        self.connection.request("POST", f"{self.prefix}/api/2.0/mlflow/{endpoint}",
                                body=json.dumps(body),
                                headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            sys.exit(f"{endpoint}: HTTP {response.status}: {data[:300]!r}")
        return data

    def get_json(self, endpoint, query):
        self.connection.request(
            "GET", f"{self.prefix}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}")
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            sys.exit(f"{endpoint}: HTTP {response.status}: {data[:300]!r}")
        return json.loads(data)


def offset_token(offset):
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def next_token(page):
    # The token is the last field MLflow writes; search only the tail of a big body.
    match = TOKEN.search(page[-400:]) or TOKEN.search(page)
    return match.group(1).decode() if match else None


EMPTY = re.compile(rb'"runs"\s*:')


def fetch_backbone(base_url, experiment_id, filters, page_size, concurrent, totals):
    pages = 0
    size = 0
    probe = Connection(base_url)
    # The fallback queries: the first that returns a run is the one read to the end (its first
    # page, read here, is asked for again below so that every page is moved the same way).
    filter_string = filters[-1]
    for candidate in filters:
        page = probe.post("runs/search", {"experiment_ids": [experiment_id], "filter": candidate,
                                          "max_results": 1, "run_view_type": "ACTIVE_ONLY"})
        pages += 1
        size += len(page)
        if EMPTY.search(page):
            filter_string = candidate
            break
    body = {"experiment_ids": [experiment_id], "filter": filter_string,
            "max_results": page_size, "run_view_type": "ACTIVE_ONLY"}
    if concurrent <= 1:
        connection = Connection(base_url)
        token = None
        while True:
            page = connection.post("runs/search", {**body, **({"page_token": token} if token else {})})
            pages += 1
            size += len(page)
            token = next_token(page)
            if not token:
                break
    else:
        connections = [Connection(base_url) for _ in range(concurrent)]
        wave = 0
        while True:
            results = [None] * concurrent

            def fetch(slot, offset):
                request = dict(body)
                if offset:
                    request["page_token"] = offset_token(offset)
                results[slot] = connections[slot].post("runs/search", request)

            threads = [threading.Thread(target=fetch, args=(slot, (wave * concurrent + slot) * page_size))
                       for slot in range(concurrent)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            pages += concurrent
            size += sum(len(page) for page in results)
            wave += 1
            if any(next_token(page) is None for page in results):
                break
    totals.append((pages, size))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--config-dir", default="config")
    parser.add_argument("--experiment")
    parser.add_argument("--page-size", type=int, default=50_000)
    parser.add_argument("--concurrent-pages", type=int, default=1)
    args = parser.parse_args()
    experiment_name, backbones, _ = load_project(args.config_dir, args.experiment)
    lookup = Connection(args.base_url)
    jobs = []
    for backbone in dict.fromkeys(backbones):
        name = hpo_experiment_name(experiment_name, backbone)
        found = lookup.get_json("experiments/get-by-name", {"experiment_name": name})
        jobs.append((found["experiment"]["experiment_id"], candidate_filters(short_name(backbone))))
    totals = []
    started = time.time()
    threads = [threading.Thread(target=fetch_backbone,
                                args=(args.base_url, experiment_id, filters, args.page_size,
                                      args.concurrent_pages, totals))
               for experiment_id, filters in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.time() - started
    print(json.dumps({"wall_s": round(wall, 2), "page_size": args.page_size,
                      "concurrent_pages": args.concurrent_pages,
                      "pages": sum(pages for pages, _ in totals),
                      "mib": round(sum(size for _, size in totals) / 2**20, 1)}))


if __name__ == "__main__":
    main()
