"""tests/dash/metrics_prom.py: a strict parser of the Prometheus text exposition format
0.0.4, for the /metrics tests (metrics_scrape.py imports it). Run as a test, it checks
that it refuses each kind of malformed exposition (selftest below).

parse(text) returns {family: Family} or raises ParseError naming the line. What it refuses:
  - a line that is not `# HELP name text`, `# TYPE name type` or `name{labels} value [ts]`
    (no other comments, no blank lines, the text ends with a newline);
  - a metric or label name outside the grammar, a label name starting with __, a label
    twice in a sample, a label value with an escape other than \\\\, \\" and \\n;
  - HELP or TYPE twice for a family, TYPE after its samples, a sample with no TYPE before
    it, samples of a family not in one group;
  - a value that Go's ParseFloat would not read, a timestamp that is not an integer;
  - a series (name and label set) twice;
  - a counter whose name does not end in _total, or with a negative or NaN value;
  - a histogram without _sum and _count for a label set, a bucket without le, buckets not
    cumulative in le order, no le="+Inf" bucket or one that differs from _count.
"""
import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|Inf|inf)\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ParseError(Exception):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []  # (sample name, labels dict, value)

    def get(self, suffix="", **labels):
        """The value of the sample name+suffix with exactly these labels, or None."""
        for name, have, value in self.samples:
            if name == self.name + suffix and have == labels:
                return value
        return None


def parse_float(text, where):
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not FLOAT.match(text):
        raise ParseError(f"{where}: '{text}' is not a float")
    return float(text)


def parse_labels(text, pos, where):
    """Parses `{a="b",...}` from text[pos] == '{'; returns (labels, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, pos)
        if not m:
            raise ParseError(f"{where}: bad label name at column {pos + 1}")
        lname = m.group(0)
        if lname.startswith("__"):
            raise ParseError(f"{where}: label name '{lname}' is reserved")
        if lname in labels:
            raise ParseError(f"{where}: label '{lname}' twice")
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise ParseError(f"{where}: expected =\" after label '{lname}'")
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise ParseError(f"{where}: unterminated label value")
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError(f"{where}: bad escape \\{nxt} in a label value")
                value.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise ParseError(f"{where}: raw newline in a label value")
            else:
                value.append(c)
                pos += 1
        labels[lname] = "".join(value)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "}":
            continue
        else:
            raise ParseError(f"{where}: expected , or }} after a label value")


def family_of(name, families):
    """The family a sample belongs to: itself, or a histogram/summary's base name."""
    if name in families:
        return families[name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in families and families[base].type in (
                "histogram", "summary"):
            if suffix == "_bucket" and families[base].type != "histogram":
                continue
            return families[base]
    return None


def parse_comment(line, where, families, closed):
    parts = line.split(" ", 3)
    if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
        raise ParseError(f"{where}: a comment that is not HELP or TYPE: {line!r}")
    kind, name = parts[1], parts[2]
    if not NAME.match(name):
        raise ParseError(f"{where}: bad metric name '{name}'")
    if name in closed:
        raise ParseError(f"{where}: {kind} for '{name}' after its samples")
    f = families.setdefault(name, Family(name))
    if kind == "HELP":
        if f.help is not None:
            raise ParseError(f"{where}: HELP twice for '{name}'")
        text = parts[3] if len(parts) == 4 else ""
        if re.search(r"\\[^\\n]", text.replace("\\\\", "")):
            raise ParseError(f"{where}: bad escape in HELP of '{name}'")
        f.help = text
    else:
        if f.type is not None:
            raise ParseError(f"{where}: TYPE twice for '{name}'")
        if f.samples:
            raise ParseError(f"{where}: TYPE for '{name}' after its samples")
        if len(parts) != 4 or parts[3] not in TYPES:
            raise ParseError(f"{where}: bad TYPE line {line!r}")
        f.type = parts[3]
    return f


def parse_sample(line, where, families):
    m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
    if not m:
        raise ParseError(f"{where}: bad metric name in {line!r}")
    name, pos = m.group(0), m.end()
    labels = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = parse_labels(line, pos, where)
    rest = line[pos:]
    if not rest.startswith(" "):
        raise ParseError(f"{where}: expected a space before the value")
    fields = rest[1:].split(" ")
    if len(fields) not in (1, 2) or "" in fields:
        raise ParseError(f"{where}: expected 'value [timestamp]', got {rest!r}")
    value = parse_float(fields[0], where)
    if len(fields) == 2 and not re.match(r"-?\d+\Z", fields[1]):
        raise ParseError(f"{where}: bad timestamp '{fields[1]}'")
    f = family_of(name, families)
    if f is None or f.type is None:
        raise ParseError(f"{where}: sample '{name}' with no TYPE before it")
    return f, name, labels, value


def check_counter(f):
    if not f.name.endswith("_total"):
        raise ParseError(f"counter '{f.name}' does not end in _total")
    for name, labels, value in f.samples:
        if math.isnan(value) or value < 0:
            raise ParseError(f"counter '{f.name}' {labels} is {value}")


def check_histogram(f):
    groups = {}
    for name, labels, value in f.samples:
        suffix = name[len(f.name):]
        if suffix not in ("_bucket", "_sum", "_count"):
            raise ParseError(f"histogram '{f.name}' has sample '{name}'")
        rest = {k: v for k, v in labels.items() if k != "le"}
        g = groups.setdefault(tuple(sorted(rest.items())), {"buckets": []})
        if suffix == "_bucket":
            if "le" not in labels:
                raise ParseError(f"'{name}' {labels}: a bucket without le")
            g["buckets"].append((parse_float(labels["le"], name), value))
        else:
            if "le" in labels:
                raise ParseError(f"'{name}' has an le label")
            g[suffix] = value
    for key, g in groups.items():
        if "_sum" not in g or "_count" not in g:
            raise ParseError(f"histogram '{f.name}' {key}: no _sum or _count")
        buckets = g["buckets"]
        if not buckets or buckets[-1][0] != math.inf:
            raise ParseError(f"histogram '{f.name}' {key}: the last bucket is not +Inf")
        bounds = [b for b, _ in buckets]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ParseError(f"histogram '{f.name}' {key}: buckets not in le order")
        counts = [c for _, c in buckets]
        if counts != sorted(counts):
            raise ParseError(f"histogram '{f.name}' {key}: buckets not cumulative {counts}")
        if counts[-1] != g["_count"]:
            raise ParseError(f"histogram '{f.name}' {key}: +Inf {counts[-1]} != _count "
                             f"{g['_count']}")


def parse(text):
    if text and not text.endswith("\n"):
        raise ParseError("the exposition does not end with a newline")
    families, closed, series = {}, set(), set()
    current = None
    for number, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {number}"
        if line.startswith("#"):
            f = parse_comment(line, where, families, closed)
        else:
            if line == "":
                raise ParseError(f"{where}: blank line")
            f, name, labels, value = parse_sample(line, where, families)
            key = (name, tuple(sorted(labels.items())))
            if key in series:
                raise ParseError(f"{where}: series {name}{labels} twice")
            series.add(key)
            f.samples.append((name, labels, value))
        if current is not None and f is not current:
            closed.add(current.name)
        if f.name in closed:
            raise ParseError(f"{where}: '{f.name}' is not in one group")
        current = f
    for f in families.values():
        if f.type is None:
            raise ParseError(f"'{f.name}' has HELP but no TYPE")
        if f.type == "counter":
            check_counter(f)
        elif f.type == "histogram":
            check_histogram(f)
    return families


def selftest():
    """The parser refuses what it must (run by metrics_scrape.py before it trusts it)."""
    good = ('# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n'
            '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 3.5\nh_count 2\n')
    parse(good)
    bad = [
        "a 1",                                                      # no newline at the end
        "# TYPE a gauge\n\na 1\n",                                  # blank line
        "# a comment\n",                                            # not HELP/TYPE
        "a 1\n",                                                    # no TYPE
        "# TYPE a gauge\na 1\n# TYPE a gauge\n",                    # TYPE twice / after
        "# TYPE 1a gauge\n",                                        # bad name
        '# TYPE a gauge\na{1x="1"} 1\n',                            # bad label name
        '# TYPE a gauge\na{__x="1"} 1\n',                           # reserved label
        '# TYPE a gauge\na{x="1",x="2"} 1\n',                       # label twice
        '# TYPE a gauge\na{x="\\t"} 1\n',                           # bad escape
        "# TYPE a gauge\na one\n",                                  # bad value
        "# TYPE a gauge\na 1 1.5\n",                                # bad timestamp
        '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n',                 # duplicate series
        "# TYPE a counter\na 1\n",                                  # counter without _total
        "# TYPE a_total counter\na_total -1\n",                     # negative counter
        "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na 2\n",          # not grouped
        "# TYPE a gauge\nb_total 1\n",                              # a sample of no family
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',  # no +Inf
        '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',  # +Inf != count
        '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n',   # no _sum
        '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n',     # no le
    ]
    for text in bad:
        try:
            parse(text)
        except ParseError:
            continue
        raise AssertionError(f"the parser accepted {text!r}")


if __name__ == "__main__":
    selftest()
    print("metrics_prom: the parser refuses every malformed case")
