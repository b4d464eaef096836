"""Scrapes ADDRESS's /1.0/metrics over HTTPS with the client certificate CERT and KEY, parses
the answer with prometheus_client's own parser, and prints it as JSON:
{"status": 200, "content_type": "...", "families": {name: {"type": ..., "samples": [[name, labels, value]]}}},
or {"status": N, "body": "..."} for any other answer."""

import json
import sys
import warnings

import requests
from prometheus_client.parser import text_string_to_metric_families

address, cert, key = sys.argv[1:4]
warnings.filterwarnings("ignore")
r = requests.get(f"https://{address}/1.0/metrics", cert=(cert, key), verify=False, timeout=30)
if r.status_code != 200:
    print(json.dumps({"status": r.status_code, "body": r.text}))
    sys.exit(0)
families = {}
for family in text_string_to_metric_families(r.text):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps({"status": 200, "content_type": r.headers.get("Content-Type", ""), "families": families}))
