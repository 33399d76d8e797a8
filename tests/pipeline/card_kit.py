"""A dataset card read back the way a renderer reads it: the YAML header as data and the
Markdown body as CommonMark + GFM tables (markdown-it, which `rich` already brings),
so the export tests check what a reader sees, not the strings that were written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

Block = tuple[str, Any]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def parse_card(text: str) -> tuple[dict[str, Any], list[Block]]:
    """The header and the top-level blocks of a card, in order: ("h1"|"h2"|"h3", text),
    ("p", text), ("list", [item text]), ("table", (header cells, rows of cells)),
    ("fence", (info, content)); anything else as (token type, None)."""
    assert text.startswith("---\n"), text[:40]
    _, front, body = text.split("---\n", 2)
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    blocks: list[Block] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            blocks.append((tok.tag, tokens[i + 1].content))
        elif tok.type == "paragraph_open":
            blocks.append(("p", tokens[i + 1].content))
        elif tok.type == "fence":
            blocks.append(("fence", (tok.info, tok.content)))
        elif tok.type in ("bullet_list_open", "table_open"):
            close = tok.type.replace("_open", "_close")
            end = next(j for j in range(i, len(tokens))
                       if tokens[j].type == close and tokens[j].level == tok.level)
            inner = tokens[i:end]
            if tok.type == "bullet_list_open":
                blocks.append(("list", [t.content for t in inner if t.type == "inline"]))
            else:
                rows: list[list[str]] = []
                for t in inner:
                    if t.type == "tr_open":
                        rows.append([])
                    elif t.type == "inline":
                        rows[-1].append(t.content)
                blocks.append(("table", (rows[0], rows[1:])))
            i = end
        elif tok.level == 0 and tok.nesting >= 0:
            blocks.append((tok.type, None))
        i += 1
        if tok.type in ("heading_open", "paragraph_open"):
            i += 2  # the inline token and the close
    return yaml.safe_load(front), blocks


def bullets(items: list[str]) -> dict[str, str]:
    """`key: value` list items as a dict; an item of any other shape (a second line, no
    key) fails."""
    out = {}
    for item in items:
        key, sep, value = item.partition(": ")
        assert sep and "\n" not in item and key not in out, item
        out[key] = value
    return out


def sections(blocks: list[Block]) -> dict[str, list[Block]]:
    """The blocks under each `##` heading, by heading text ("" for those before any)."""
    out: dict[str, list[Block]] = {"": []}
    name = ""
    for kind, value in blocks:
        if kind == "h2":
            assert value not in out, value
            name, out[value] = value, []
        else:
            out[name].append((kind, value))
    return out


def documented_prose(fmt: str) -> str:
    """What docs/exports.md says the card states about its frames and times for `fmt`: its
    four quoted sentences (all formats, LeRobot's timing, the others' timing, the labels),
    whitespace collapsed."""
    docs = (DOCS / "exports.md").read_text()
    paragraph = docs[docs.index("the card says what"):].split("\n\n", 1)[0]
    frames, lerobot, others, labels = (" ".join(q.split()) for q in
                                       re.findall(r"\*([^*]+)\*", paragraph))
    return " ".join([frames, lerobot if fmt == "lerobot" else others, labels])
