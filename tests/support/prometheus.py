"""A real Prometheus for tests: its own config, data dir and port; PromQL selector parsing;
rules with their durations scaled down (generated from deploy/alerts.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.support.infra import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "alerts.yml"

# --- PromQL: which metrics and labels an expression names ---------------------------------
# Debian's Prometheus 2.42 has no /api/v1/parse_query, so a tokenizer that knows PromQL's
# lexical rules: strings, comments, ranges/subqueries/offsets, label matchers, grouping.

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<var>\$\{[^}]*\}|\$\w+)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){},@])
""", re.VERBOSE)
_DURATION = re.compile(r"-?(?:\d+(?:ms|[smhdwy]))+")
KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk",
                "bottomk", "quantile", "count_values"}


@dataclass
class Selector:
    name: str | None
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # label, op, value


@dataclass
class Parsed:
    selectors: list[Selector]
    grouping: set[str]  # labels named by by/without/on/ignoring/group_left/group_right


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot tokenize {expr[pos:pos + 30]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def _unquote(s: str) -> str:
    return s[1:-1] if s[0] == "`" else bytes(s[1:-1], "utf-8").decode("unicode_escape")


def parse(expr: str) -> Parsed:
    """The vector selectors (metric name and matchers) and grouping labels of a query."""
    toks = _tokens(expr)
    selectors: list[Selector] = []
    grouping: set[str] = set()
    i = 0

    def matchers(j: int) -> tuple[list[tuple[str, str, str]], int]:
        """Label matchers from the `{` at j; returns them and the index after `}`."""
        found, j = [], j + 1
        while toks[j][1] != "}":
            if toks[j][1] == ",":
                j += 1
                continue
            label, op, value = toks[j][1], toks[j + 1][1], toks[j + 2]
            if toks[j][0] not in ("ident", "string") or value[0] != "string":
                raise ValueError(f"bad label matcher near {label!r} in {expr!r}")
            found.append((label, op, _unquote(value[1])))
            j += 3
        return found, j + 1

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text.lower() == "offset":
            # the duration that follows lexes as number + ident: skip them together
            rest = "".join(t for _, t in toks[i + 1:i + 8])
            dur = _DURATION.match(rest)
            if dur is None:
                raise ValueError(f"offset without duration in {expr!r}")
            consumed, j = "", i + 1
            while consumed != dur.group():
                consumed += toks[j][1]
                j += 1
            i = j
            continue
        if kind == "ident" and text in GROUPING:
            if nxt == "(":
                j = i + 2
                while toks[j][1] != ")":
                    if toks[j][0] == "ident":
                        grouping.add(toks[j][1])
                    j += 1
                i = j + 1
            else:
                i += 1  # group_left without a label list
            continue
        if kind == "ident" and text == "label_values" and nxt == "(":
            # Grafana's template function: label_values(selector, label) or (label)
            j, depth = i + 2, 0
            while not (depth == 0 and toks[j][1] == ")"):
                depth += {"(": 1, ")": -1}.get(toks[j][1], 0)
                j += 1
            inner = toks[i + 2:j]
            grouping.add(inner[-1][1])
            if len(inner) > 2 and inner[-2][1] == ",":
                sub = parse(" ".join(t for _, t in inner[:-2]))
                selectors += sub.selectors
                grouping |= sub.grouping
            i = j + 1
            continue
        if kind == "ident" and (nxt == "(" or text in AGGREGATIONS and nxt in GROUPING):
            i += 1  # a function or aggregation name (`sum by (x) (...)` too)
            continue
        if kind == "ident" and text.lower() not in KEYWORDS:
            sel = Selector(text)
            i += 1
            if i < len(toks) and toks[i][1] == "{":
                sel.matchers, i = matchers(i)
            selectors.append(sel)
            continue
        if text == "{":
            found, i = matchers(i)
            name = next((v for lbl, op, v in found if lbl == "__name__" and op == "="), None)
            selectors.append(Selector(name, [m for m in found if m[0] != "__name__"]))
            continue
        i += 1
    return Parsed(selectors, grouping)


# --- rules with durations scaled down -----------------------------------------------------

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
             "w": 604_800_000, "y": 31_536_000_000}


def duration_ms(text: str) -> int:
    return sum(int(n) * _UNITS_MS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", text))


def _scaled(text: str, factor: int) -> str:
    return f"{max(1, duration_ms(text) // factor)}ms"


def scale_expr(expr: str, factor: int) -> str:
    """Every range, subquery resolution and offset divided by factor (1h → 1m at 60)."""
    def in_brackets(m: re.Match) -> str:
        return "[" + ":".join(_scaled(p, factor) if p.strip() else p
                              for p in m.group(1).split(":")) + "]"
    expr = re.sub(r"\[([^\]]*)\]", in_brackets, expr)
    return re.sub(r"\boffset\s+(\d+(?:ms|[smhdwy])+)",
                  lambda m: "offset " + _scaled(m.group(1), factor), expr)


def scaled_rules(factor: int, source: Path = RULES) -> str:
    """deploy/alerts.yml with every window and `for:` divided by factor, thresholds kept."""
    doc = yaml.safe_load(source.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = scale_expr(rule["expr"], factor)
            if "for" in rule:
                rule["for"] = _scaled(rule["for"], factor)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# --- a Prometheus process -----------------------------------------------------------------

def installed() -> bool:
    return shutil.which("prometheus") is not None and shutil.which("promtool") is not None


class Prometheus:
    """`prometheus` scraping the given targets every second, rules evaluated every second."""

    def __init__(self, workdir: Path, targets: dict[str, str], rules_text: str,
                 interval: str = "1s") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "rules.yml").write_text(rules_text)
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval,
                       "evaluation_interval": interval},
            "rule_files": [str(workdir / "rules.yml")],
            "scrape_configs": [{"job_name": "desk", "static_configs": [
                {"targets": sorted(targets.values())}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "prometheus.log"

    def start(self, timeout: float = 30) -> None:
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def query(self, expr: str) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def alerts(self, name: str, state: str | None = None) -> list[dict]:
        """Active alerts called name (pending or firing; resolved ones are not listed)."""
        r = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        r.raise_for_status()
        return [a for a in r.json()["data"]["alerts"] if a["labels"]["alertname"] == name
                and (state is None or a["state"] == state)]

    def rule_health(self) -> list[tuple[str, str, str]]:
        """(rule name, health, error) of every loaded rule that is not ok."""
        r = httpx.get(f"{self.url}/api/v1/rules", timeout=10)
        r.raise_for_status()
        return [(rule["name"], rule["health"], rule.get("lastError", ""))
                for g in r.json()["data"]["groups"] for rule in g["rules"]
                if rule["health"] != "ok"]
