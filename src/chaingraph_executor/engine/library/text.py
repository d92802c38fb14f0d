"""Text nodes: concatenation, templates, regular expressions, case, trimming, splitting, joining."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from chaingraph_executor.domain.flow import Direction, PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, render_template, text_of
from chaingraph_executor.engine.nodes import Input, Output


class Concat(LibraryNode):
    type = "text.concat"
    title = "Concatenate"
    category = "text"
    description = "Join a and b (or every element of `parts`) with `separator`; non-text values read as JSON."
    a = Input(PortType.ANY)
    b = Input(PortType.ANY)
    parts = Input(PortType.ARRAY, description="used instead of a and b when given")
    separator = Input(PortType.STRING, default="")
    text = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        separator = self.read_string(ctx, "separator")
        parts = self.opt_array(ctx, "parts")
        if parts is None:
            parts = [ctx.inputs.get("a"), ctx.inputs.get("b")]
        return {"text": separator.join(text_of(p) for p in parts)}


class Template(LibraryNode):
    type = "text.template"
    title = "Template"
    category = "text"
    description = (
        "Fill `{{name}}` placeholders (dotted paths allowed: `{{user.name}}`) from the extra input "
        "ports declared on the node and from the object `values` (extra ports win). An unknown "
        "placeholder fails the node unless `strict` is false (then it renders as nothing)."
    )
    dynamic_ports = True
    dynamic_direction = Direction.INPUT
    template = Input(PortType.STRING, default="")
    values = Input(PortType.OBJECT, description="variables, besides the extra input ports")
    strict = Input(PortType.BOOLEAN, default=True)
    text = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        template = self.read_string(ctx, "template")
        strict = self.read_boolean(ctx, "strict")
        variables: dict[str, Any] = dict(self.opt_object(ctx, "values") or {})
        for spec in self.flow_node.ports:
            variables[spec.id] = ctx.inputs.get(spec.id)
        text, unknown = render_template(template, variables)
        if unknown and strict:
            known = ", ".join(sorted(variables)) or "none"
            names = ", ".join(f"'{u}'" for u in unknown)
            raise self.fail(f"unknown placeholder {names} (variables: {known})")
        return {"text": text}


# -- regular expressions ----------------------------------------------------------------------
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "g": re.NOFLAG}
# JavaScript's named groups (?<name>...) are Python's (?P<name>...)
_JS_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z_])")
_REPLACEMENT_TOKEN = re.compile(r"\$(\$|&|<([A-Za-z_]\w*)>|(\d{1,2}))")


class Regex(LibraryNode):
    type = "text.regex"
    title = "Regular expression"
    category = "text"
    description = (
        "test: does `pattern` occur in `text`; match: the first match as {match, index, groups, named} "
        "(null when none); matchAll: every match; replace: replace every match with `replacement` "
        "($1, $<name>, $& and $$ refer to groups, the whole match and a dollar); split: the parts "
        "between matches. `flags`: i (ignore case), m (multiline), s (dot matches newline). "
        "`matched` tells whether the pattern matched at all."
    )
    pattern = Input(PortType.STRING, default="")
    text = Input(PortType.STRING, default="")
    operation = Input(
        PortType.ENUM, default="test", options=["test", "match", "matchAll", "replace", "split"]
    )
    replacement = Input(PortType.STRING, default="")
    flags = Input(PortType.STRING, default="", description="letters among i, m, s (g is accepted, ignored)")
    result = Output(PortType.ANY)
    matched = Output(PortType.BOOLEAN)

    def compile(self, pattern: str, flags: str) -> re.Pattern[str]:
        value = re.NOFLAG
        for letter in flags:
            if letter in ", ":
                continue
            if letter not in _FLAGS:
                raise self.fail(f"unknown flag '{letter}' (use i, m, s)")
            value |= _FLAGS[letter]
        try:
            return re.compile(_JS_NAMED_GROUP.sub("(?P<", pattern), value)
        except re.error as exc:
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            raise self.fail(f"invalid pattern{where}: {exc.msg}") from None

    def replacer(self, compiled: re.Pattern[str], replacement: str) -> Callable[[re.Match[str]], str]:
        def group_ref(token: re.Match[str]) -> int | str:
            if token.group(2) is not None:
                name = token.group(2)
                if name not in compiled.groupindex:
                    raise self.fail(f"replacement refers to unknown group '{name}'")
                return name
            number = int(token.group(3))
            if number > compiled.groups:
                raise self.fail(f"replacement refers to group {number}, the pattern has {compiled.groups}")
            return number

        # validate once, before any match
        for token in _REPLACEMENT_TOKEN.finditer(replacement):
            if token.group(1) not in ("$", "&"):
                group_ref(token)

        def expand(m: re.Match[str]) -> str:
            def one(token: re.Match[str]) -> str:
                if token.group(1) == "$":
                    return "$"
                if token.group(1) == "&":
                    return m.group(0)
                return m.group(group_ref(token)) or ""

            return _REPLACEMENT_TOKEN.sub(one, replacement)

        return expand

    @staticmethod
    def describe(m: re.Match[str]) -> dict[str, Any]:
        return {"match": m.group(0), "index": m.start(), "groups": list(m.groups()), "named": m.groupdict()}

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        text = self.read_string(ctx, "text")
        operation = self.read_string(ctx, "operation")
        compiled = self.compile(self.read_string(ctx, "pattern"), self.read_string(ctx, "flags"))
        first = compiled.search(text)
        matched = first is not None
        result: Any
        if operation == "test":
            result = matched
        elif operation == "match":
            result = self.describe(first) if first is not None else None
        elif operation == "matchAll":
            result = [self.describe(m) for m in compiled.finditer(text)]
        elif operation == "replace":
            result = compiled.sub(self.replacer(compiled, self.read_string(ctx, "replacement")), text)
        elif operation == "split":
            result = compiled.split(text)
        else:
            raise self.fail(f"unknown operation '{operation}'")
        return {"result": result, "matched": matched}


# -- small text utilities ---------------------------------------------------------------------
class Length(LibraryNode):
    type = "text.length"
    title = "Text length"
    category = "text"
    description = "The number of characters of `text`."
    text = Input(PortType.STRING, default="")
    length = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"length": len(self.read_string(ctx, "text"))}


_WORD = re.compile(r"\S+")


class Case(LibraryNode):
    type = "text.case"
    title = "Change case"
    category = "text"
    description = "UPPER, lower or Title Case (each whitespace-separated word capitalised)."
    text = Input(PortType.STRING, default="")
    mode = Input(PortType.ENUM, default="upper", options=["upper", "lower", "title"])
    result = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        text = self.read_string(ctx, "text")
        mode = self.read_string(ctx, "mode")
        if mode == "upper":
            return {"result": text.upper()}
        if mode == "lower":
            return {"result": text.lower()}
        if mode == "title":
            return {"result": _WORD.sub(lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), text)}
        raise self.fail(f"unknown mode '{mode}' (use upper, lower or title)")


class Trim(LibraryNode):
    type = "text.trim"
    title = "Trim"
    category = "text"
    description = "Remove whitespace (or the characters in `chars`) from both ends, the start or the end."
    text = Input(PortType.STRING, default="")
    mode = Input(PortType.ENUM, default="both", options=["both", "start", "end"])
    chars = Input(PortType.STRING, default="", description="characters to remove; empty: whitespace")
    result = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        text = self.read_string(ctx, "text")
        mode = self.read_string(ctx, "mode")
        chars = self.read_string(ctx, "chars") or None
        if mode == "both":
            return {"result": text.strip(chars)}
        if mode == "start":
            return {"result": text.lstrip(chars)}
        if mode == "end":
            return {"result": text.rstrip(chars)}
        raise self.fail(f"unknown mode '{mode}' (use both, start or end)")


class Split(LibraryNode):
    type = "text.split"
    title = "Split text"
    category = "text"
    description = (
        "Split `text` at every `separator` (empty separator: into characters); optionally trim the "
        "parts and drop the empty ones."
    )
    text = Input(PortType.STRING, default="")
    separator = Input(PortType.STRING, default=",")
    trim = Input(PortType.BOOLEAN, default=False)
    removeEmpty = Input(PortType.BOOLEAN, default=False)
    parts = Output(PortType.ARRAY)
    count = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        text = self.read_string(ctx, "text")
        separator = self.read_string(ctx, "separator")
        parts = list(text) if separator == "" else text.split(separator)
        if self.read_boolean(ctx, "trim"):
            parts = [p.strip() for p in parts]
        if self.read_boolean(ctx, "removeEmpty"):
            parts = [p for p in parts if p]
        return {"parts": parts, "count": len(parts)}


class Join(LibraryNode):
    type = "text.join"
    title = "Join texts"
    category = "text"
    description = (
        "Join the elements of `parts` with `separator`; non-text elements read as JSON, null as nothing."
    )
    parts = Input(PortType.ARRAY, default=[])
    separator = Input(PortType.STRING, default=",")
    text = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        parts = self.read_array(ctx, "parts")
        return {"text": self.read_string(ctx, "separator").join(text_of(p) for p in parts)}


TEXT_NODES: tuple[type[LibraryNode], ...] = (Concat, Template, Regex, Length, Case, Trim, Split, Join)
