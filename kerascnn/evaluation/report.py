"""The evaluation report: top-1/top-5 error per protocol beside the paper's figures,
as a text table, JSON and Markdown."""

from __future__ import annotations

import dataclasses
import json
import os

__all__ = ["EvaluationReport", "ProtocolResult", "paper_result"]


def paper_result(name, protocol):
    """The paper's ``{"top1", "top5", "dataset"}`` for a registry model name and protocol
    (under the first of the protocol's ``paper_names`` the registry entry has), or None
    when the name is not in the registry or it has no figure for the protocol."""
    from kerascnn.applications import get_model_info
    from kerascnn.evaluation.protocols import TABLE

    if not name or protocol not in TABLE:
        return None
    try:
        info = get_model_info(name)
    except ValueError:  # not a registry name: no figure
        return None
    results = info.paper_results or {}
    return next((results[k] for k in TABLE[protocol].paper_names if k in results), None)


@dataclasses.dataclass
class ProtocolResult:
    protocol: str
    top1: float
    top5: float
    examples: int
    views: int
    settings: str = ""
    paper_top1: float | None = None
    paper_top5: float | None = None
    paper_dataset: str | None = None


def _fmt(v):
    return "—" if v is None else f"{v:.2f}"


@dataclasses.dataclass
class EvaluationReport:
    """Results of :func:`kerascnn.evaluation.evaluate`: one row per protocol."""

    models: list
    source: str
    split: str
    results: list
    # The weight set's publisher's own figure, as errors in % (100 - its accuracy):
    # {"publisher", "top1", "top5", "protocol", "setting"}; shown beside every row.
    publisher: dict | None = None

    def __getitem__(self, protocol) -> ProtocolResult:
        for r in self.results:
            if r.protocol == protocol:
                return r
        raise KeyError(protocol)

    def to_dict(self):
        return {
            "models": list(self.models),
            "source": self.source,
            "split": self.split,
            "results": [dataclasses.asdict(r) for r in self.results],
            **({"publisher": dict(self.publisher)} if self.publisher else {}),
        }

    def _rows(self):
        header = ["protocol", "views", "images", "top-1 err %", "top-5 err %", "paper top-1", "paper top-5", "paper data"]
        rows = [
            [r.protocol, str(r.views), str(r.examples), _fmt(r.top1), _fmt(r.top5), _fmt(r.paper_top1), _fmt(r.paper_top5), r.paper_dataset or "—"]
            for r in self.results
        ]
        if self.publisher:
            pub = self.publisher
            header += [f"{pub['publisher']} top-1", f"{pub['publisher']} top-5",
                       f"{pub['publisher']} protocol"]
            rows = [r + [_fmt(pub["top1"]), _fmt(pub["top5"]), pub["protocol"]] for r in rows]
        return header, rows

    def _publisher_note(self):
        pub = self.publisher
        if not pub:
            return []
        return [f"{pub['publisher']}'s reported error (100 - its accuracy): top-1 "
                f"{_fmt(pub['top1'])}%, top-5 {_fmt(pub['top5'])}%, measured with the "
                f"{pub['protocol']!r} protocol: {pub['setting']}."]

    def publisher_text(self) -> str:
        """The publisher's figure as one line ("" without one)."""
        return "\n".join(self._publisher_note())

    def _title(self):
        fused = " (fused)" if len(self.models) > 1 else ""
        return f"{' + '.join(str(m) for m in self.models)}{fused} on {self.source} [{self.split}]"

    def to_text(self) -> str:
        header, rows = self._rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
        return "\n".join([self._title(), line(header), line(["-" * w for w in widths]), *map(line, rows),
                          *self._publisher_note()])

    def to_markdown(self) -> str:
        header, rows = self._rows()
        out = [f"# {self._title()}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out += ["", "Settings:"] + [f"- {r.settings}" for r in self.results]
        out += [f"- {note}" for note in self._publisher_note()]
        return "\n".join(out) + "\n"

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path) -> tuple[str, str]:
        """Write ``<path>.json`` and ``<path>.md`` (a ``.json``/``.md`` suffix is dropped)."""
        stem = os.fspath(path)
        for suffix in (".json", ".md"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
        with open(stem + ".json", "w") as f:
            f.write(self.to_json() + "\n")
        with open(stem + ".md", "w") as f:
            f.write(self.to_markdown())
        return stem + ".json", stem + ".md"

    def __str__(self):
        return self.to_text()
