"""TypeScript types and a typed client from the ``__schema__`` document.

`typescript` turns the contract into one self-contained ``.ts`` module:

- for every component, the **dump side** as ``Name`` (what replies and events
  carry: wire names, ``data_key`` included; ``writeOnly`` (load-only)
  fields left out) and the **load side** as ``NameInput`` (what requests
  carry: ``required`` fields required, the others, ``load_default`` ones
  included, optional; ``readOnly`` (dump-only) fields left out);
- ``NamePath``: every name a ``fields`` selection may use on that output,
  dotted paths into nested schemas included, and ``Select<Name, Paths>``,
  the exact shape such a selection returns (a parent and one of its
  sub-fields select the sub-field, as marshmallow's ``only`` does);
- every topic's params, payload and selection, and on topics with
  presence the member type (``Selected<Member, F>`` for the joins, leaves
  and lists of ``memberFields``/``fields``); the error codes;
- `typed(dz)`: wraps a drizzle.js client (anything with its ``call``,
  ``stream``, ``subscribe`` and ``publish``) as ``api.todos.create({...})``
  and ``api.topics.chat({room: "lobby"}).subscribe(handler)``; a streaming
  action is an ``AsyncIterableIterator`` of its selected items
  (``for await (const todo of api.todos.search({q}))``; ``return()``, as a
  ``break`` calls it, cancels the stream).

Every output field is typed as present: marshmallow dumps what the object
has, and the types assume the object has what its schema declares; only
the fields through which a schema nests itself again (a tree's children)
are optional, since a value ends somewhere. Self-referencing schemas get
paths down to `RECURSION_DEPTH` levels of the same schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from .asyncapi import STABLE_ERROR_CODES
from .introspection import INPUT_SUFFIX

RECURSION_DEPTH = 3
"""How many times one schema may appear along a dotted path in the generated path types."""

_REF = "#/components/schemas/"
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_HELPERS = frozenset({"Api", "Select", "Selected", "TopicHandle", "PublishableTopic", "DrizzleLike", "EventMeta",
                      "SubscriptionLike", "CallOptions", "StreamOptions", "ErrorCode", "AnyErrorCode",
                      "ChannelReply", "typed", "PresenceTopic", "PresenceEntry", "MemberMeta", "Publishes"})

_PRELUDE = '''\
/** What every call may add: a `fields` selection and a timeout (ms). */
export interface CallOptions<F extends readonly string[]> {
  fields?: F;
  timeout?: number;
}

/** What a stream call may add: a `fields` selection (each item carries it). */
export interface StreamOptions<F extends readonly string[]> {
  fields?: F;
}

type Head<P extends string> = P extends `${infer H}.${string}` ? H : P;
type Rest<P extends string, K extends string> = P extends `${K}.${infer R}` ? R : never;

/** The part of `T` the dotted `fields` paths `P` select (a parent and a sub-field select the sub-field). */
export type Select<T, P extends string> =
  T extends readonly (infer E)[] ? Select<E, P>[] :
  T extends object ? {
    [K in keyof T as K extends Head<P> ? K : never]:
      [Rest<P, K & string>] extends [never] ? T[K] : Select<T[K], Rest<P, K & string>>
  } : T;

/** `T` when no `fields` were given, else the selected part of it. */
export type Selected<T, F extends readonly string[]> = F extends readonly [] ? T : Select<T, F[number]>;

/** The stable error codes of the protocol; an action may raise codes of its own. */
export type ErrorCode = %(codes)s;
export type AnyErrorCode = ErrorCode | (string & {});

/** The reply of __subscribe__, __unsubscribe__ and __publish__. */
export interface ChannelReply {
  topic: string;
}

/** The reply of __publish__: with an idempotency key, whether it was a repeat, and its position on history. */
export interface PublishReply extends ChannelReply {
  epoch?: string;
  offset?: number;
  duplicate?: boolean;
}

export interface EventMeta {
  /** the concrete channel the event came on, e.g. "chat.lobby" */
  topic: string;
  /** topics with history: the event's offset in its channel (a lost range is drizzle.js's "gap" event) */
  offset?: number;
}

export interface SubscriptionLike {
  unsubscribe(): Promise<void>;
}

/** What `typed` needs of a client: drizzle.js's `Drizzle` has it. */
export interface DrizzleLike {
  call(resource: string, action: string, data?: unknown,
       options?: { fields?: readonly string[]; timeout?: number }): Promise<unknown>;
  subscribe(topic: string, handler: (data: any, meta: EventMeta) => void,
            options?: { fields?: readonly string[] }): Promise<SubscriptionLike>;
  publish(topic: string, payload: unknown): Promise<unknown>;
  stream(resource: string, action: string, data?: unknown,
         options?: { fields?: readonly string[] }): AsyncIterableIterator<unknown>;
  presence?(topic: string, options?: { fields?: readonly string[] }): Promise<unknown>;
}

/** One concrete channel of a topic. */
export interface TopicHandle<T, P extends string> {
  readonly channel: string;
  subscribe<const F extends readonly P[] = []>(
    handler: (data: Selected<T, F>, meta: EventMeta) => void,
    options?: { fields?: F },
  ): Promise<SubscriptionLike>;
}

/** A channel of a topic declared with `client_publish=True`. */
export interface PublishableTopic<T, P extends string, In> extends TopicHandle<T, P> {
  publish(payload: In): Promise<PublishReply>;
}

/** What a channel that clients may publish to adds. */
export interface Publishes<In> {
  publish(payload: In): Promise<ChannelReply>;
}

/** Who a join or leave is about: the channel, and the member's key. */
export interface MemberMeta {
  topic: string;
  key: string;
}

/** One member of a channel, as `presence()` lists it. */
export interface PresenceEntry<M> {
  key: string;
  /** its connections, over every gateway process */
  connections: number;
  member: M;
}

/**
 * A channel of a topic with presence: members `M` (selectable by `MP`); `MIn` is the
 * entry a client may give (`never` unless the topic has `client_presence`).
 */
export interface PresenceTopic<T, P extends string, M, MP extends string, MIn> {
  readonly channel: string;
  subscribe<const F extends readonly P[] = [], const MF extends readonly MP[] = []>(
    handler: (data: Selected<T, F>, meta: EventMeta) => void,
    options?: {
      fields?: F;
      presence?: MIn;
      memberFields?: MF;
      onJoin?: (member: Selected<M, MF>, meta: MemberMeta) => void;
      onLeave?: (member: Selected<M, MF>, meta: MemberMeta) => void;
      onStale?: (meta: { topic: string }) => void;
    },
  ): Promise<SubscriptionLike>;
  presence<const F extends readonly MP[] = []>(options?: { fields?: F }): Promise<PresenceEntry<Selected<M, F>>[]>;
}
'''


def _literal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else "null"
    return json.dumps(value, ensure_ascii=False)


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _doc(text: str | None, indent: str) -> str:
    if not text:
        return ""
    body = text.strip().replace("*/", "*\\/")
    lines = body.splitlines()
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    return f"{indent}/**\n" + "".join(f"{indent} * {line}\n".replace(" \n", "\n") for line in lines) + f"{indent} */\n"


class _Generator:
    """Writes the module for one ``__schema__`` document."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.components: dict[str, Any] = schema["components"]["schemas"]
        self.names = {name: self._type_name(name) for name in self.components}
        self.wanted: dict[str, set[str]] = {"out": set(), "in": set()}

    @staticmethod
    def _type_name(name: str) -> str:
        """The TypeScript name of component ``name``: a load side of its own (``Todo-Input``) is ``Todo``'s."""
        ident = re.sub(r"[^A-Za-z0-9_$]", "_", name.removesuffix(INPUT_SUFFIX))
        if not _IDENTIFIER.match(ident):
            ident = "_" + ident
        return ident + "_" if ident in _HELPERS else ident

    # -- JSON Schema to TypeScript ----------------------------------------------------

    def ref_name(self, ref: str, side: str) -> str:
        name = ref.removeprefix(_REF)
        self.wanted[side].add(name)
        return self.names[name] + ("Input" if side == "in" else "")

    def type_of(self, node: Any, side: str, indent: str = "") -> str:
        """The TypeScript type of the JSON Schema ``node`` on ``side`` ("in": loaded, "out": dumped)."""
        if node is True or node == {}:
            return "unknown"
        if node is False or node == {"not": {}}:
            return "never"
        if not isinstance(node, dict):
            return "unknown"
        if "$ref" in node:
            return self.ref_name(node["$ref"], side)
        if "const" in node:
            return _literal(node["const"])
        if "enum" in node:
            return " | ".join(_literal(v) for v in node["enum"]) or "never"
        for keyword, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
            if keyword in node:
                return joiner.join(f"({self.type_of(sub, side, indent)})" for sub in node[keyword])
        kinds = node.get("type")
        if kinds is None:
            kinds = ["object"] if "properties" in node else (["array"] if "items" in node else None)
        if kinds is None:
            return "unknown"
        if isinstance(kinds, str):
            kinds = [kinds]
        return " | ".join(self._kind(kind, node, side, indent) for kind in kinds)

    def _kind(self, kind: str, node: dict, side: str, indent: str) -> str:
        if kind in ("integer", "number"):
            return "number"
        if kind in ("string", "boolean", "null"):
            return kind
        if kind == "array":
            if "prefixItems" in node:
                return "[" + ", ".join(self.type_of(item, side, indent) for item in node["prefixItems"]) + "]"
            return f"Array<{self.type_of(node.get('items', True), side, indent)}>"
        if kind == "object":
            return self.object_type(node, side, indent)
        return "unknown"

    def object_type(self, node: dict, side: str, indent: str) -> str:
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if not properties:
            value = self.type_of(extra, side, indent) if isinstance(extra, dict) else "unknown"
            return f"{{ [key: string]: {value} }}"
        return self.properties(node, side, indent)

    def reaches(self, start: str, goal: str) -> bool:
        """Whether component ``start`` nests ``goal`` (itself included), at any depth."""
        seen: set[str] = set()
        todo = [start]
        while todo:
            name = todo.pop()
            if name == goal:
                return True
            if name in seen or name not in self.components:
                continue
            seen.add(name)
            todo.extend(self._targets(self.components[name]))  # a oneOf's branches
            for prop in self.components[name].get("properties", {}).values():
                todo.extend(self._targets(prop))
        return False

    def properties(self, node: dict, side: str, indent: str, component: str | None = None) -> str:
        """An object type; on the dump side, a field that nests its own ``component`` again is optional."""
        required = set(node.get("required", ()))
        inner = indent + "  "
        lines = ["{"]
        for name, prop in node.get("properties", {}).items():
            if isinstance(prop, dict) and prop.get("writeOnly" if side == "out" else "readOnly"):
                continue
            if side == "in":
                optional = "" if name in required else "?"
            else:  # a value of a self-nesting schema ends somewhere: its nesting fields cannot all be there
                optional = "?" if component and any(self.reaches(t, component) for t in self._targets(prop)) else ""
            description = prop.get("description") if isinstance(prop, dict) else None
            if description:
                lines.append(_doc(description, inner).rstrip("\n"))
            lines.append(f"{inner}{_key(name)}{optional}: {self.type_of(prop, side, inner)};")
        lines.append(indent + "}")
        return "\n".join(lines)

    # -- selection paths --------------------------------------------------------------

    def _targets(self, node: Any) -> Iterator[str]:
        """The components a field's dotted paths go into (Nested, List(Nested), nullable ones)."""
        if not isinstance(node, dict):
            return
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].removeprefix(_REF)
        kinds = node.get("type")
        if kinds == "array" or (isinstance(kinds, list) and "array" in kinds):
            if "prefixItems" not in node:
                yield from self._targets(node.get("items"))
        for keyword in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(keyword, ()):
                yield from self._targets(sub)

    def paths(self, name: str, stack: tuple[str, ...] = ()) -> list[str]:
        """Every selectable dotted path of component ``name`` (dump side)."""
        stack = (*stack, name)
        result = []
        for field, prop in self.components[name].get("properties", {}).items():
            if isinstance(prop, dict) and prop.get("writeOnly"):
                continue
            result.append(field)
            for target in self._targets(prop):
                if stack.count(target) < RECURSION_DEPTH:
                    result.extend(f"{field}.{sub}" for sub in self.paths(target, stack))
        return result

    def output_paths(self, node: Any) -> str:
        """The path type of an output schema (an object, or an array of them)."""
        targets = list(self._targets(node))
        if not targets:
            return "never"
        return " | ".join(dict.fromkeys(self.names[t] + "Path" for t in targets))

    # -- the module -------------------------------------------------------------------

    def action(self, resource: str, act: dict[str, Any]) -> tuple[str, str]:
        """The method signature of an action in ``Api``, and its runtime entry."""
        input_schema, output_schema = act["input"], act["output"]
        if input_schema is None:
            data = "data?: Record<string, unknown> | null"
        else:
            resolved = self.components.get(str(input_schema.get("$ref", "")).removeprefix(_REF), input_schema)
            optional = "" if resolved.get("required") or "oneOf" in resolved else "?"  # a oneOf needs its type
            data = f"data{optional}: {self.type_of(input_schema, 'in', '    ')}"
        output = self.type_of(output_schema, "out", "    ") if output_schema is not None else "unknown"
        paths = self.output_paths(output_schema)
        if act.get("stream"):
            options, answer, maker = "StreamOptions<F>", f"AsyncIterableIterator<Selected<{output}, F>>", "stream"
        else:
            options, answer, maker = "CallOptions<F>", f"Promise<Selected<{output}, F>>", "call"
        signature = (f"{_doc(act['description'], '    ')}"
                     f"    {_key(act['name'])}<const F extends readonly ({paths})[] = []>({data}, "
                     f"options?: {options}): {answer};\n")
        runtime = f"      {_key(act['name'])}: {maker}({json.dumps(resource)}, {json.dumps(act['name'])}),\n"
        return signature, runtime

    def topic_member(self, name: str, taken: set[str]) -> str:
        """The name of a topic under ``api.topics``: ``chat`` for ``chat.{room}``, longer if that is taken."""
        member = re.sub(r"[^A-Za-z0-9_$]", "_", re.sub(r"\.?\{[^}]*\}", "", name)) or "topic"
        if member in taken:
            member = re.sub(r"[^A-Za-z0-9_$]", "_", name.replace("{", "").replace("}", ""))
        while member in taken:
            member += "_"
        taken.add(member)
        return member

    def topic(self, topic: dict[str, Any], member: str) -> tuple[str, str, str]:
        """The params type, the ``topics`` member of ``Api`` and its runtime entry of a topic."""
        name = topic["name"]
        params_type = "{ " + " ".join(f"{_key(p)}: string;" for p in topic["params"]) + " }"
        payload = topic["payload"]
        out = self.type_of(payload, "out", "    ") if payload is not None else "unknown"
        paths = self.output_paths(payload) if payload is not None else "never"
        presence = topic.get("presence")
        taken = topic.get("publish") or payload  # what __publish__ loads (older documents: the payload)
        if presence is not None:
            schema = presence["member"]
            entry = self.type_of(presence["input"], "in", "    ") if presence.get("input") else "never"
            handle = (f"PresenceTopic<{out}, {paths}, {self.type_of(schema, 'out', '    ')}, "
                      f"{self.output_paths(schema)}, {entry}>")
            if topic["client_publish"]:
                handle += f" & Publishes<{self.type_of(taken, 'in', '    ')}>"
        elif topic["client_publish"]:
            handle = f"PublishableTopic<{out}, {paths}, {self.type_of(taken, 'in', '    ')}>"
        else:
            handle = f"TopicHandle<{out}, {paths}>"
        args = f"params: {params_type}" if topic["params"] else ""
        signature = f"{_doc(topic['description'], '    ')}    {_key(member)}({args}): {handle};\n"
        parts = re.split(r"\{([^}]*)\}", name)
        expression = " + ".join(json.dumps(part) if i % 2 == 0 else f"params[{json.dumps(part)}]"
                                for i, part in enumerate(parts) if part or i % 2)
        lambda_args = f"(params: {params_type})" if topic["params"] else "()"
        runtime = f"      {_key(member)}: {lambda_args} => channel({expression}),\n"
        return params_type, signature, runtime

    def module(self) -> str:
        if any(resource["name"] == "topics" for resource in self.schema["resources"]):
            raise ValueError("a resource named 'topics' would hide api.topics; rename the resource")
        api = ["export interface Api {\n"]
        runtime = []
        for resource in self.schema["resources"]:
            api.append(_doc(resource["description"], "  ") + f"  {_key(resource['name'])}: {{\n")
            runtime.append(f"    {_key(resource['name'])}: {{\n")
            for act in resource["actions"]:
                signature, entry = self.action(resource["name"], act)
                api.append(signature)
                runtime.append(entry)
            api.append("  };\n")
            runtime.append("    },\n")
        api.append("  topics: {\n")
        runtime.append("    topics: {\n")
        params_types = []
        taken: set[str] = set()
        for topic in self.schema["topics"]:
            params_type, signature, entry = self.topic(topic, self.topic_member(topic["name"], taken))
            params_types.append((topic["name"], params_type))
            api.append(signature)
            runtime.append(entry)
        api.append("  };\n}\n")
        runtime.append("    },\n")
        types = self.component_types()
        codes = " | ".join(json.dumps(code) for code in STABLE_ERROR_CODES)
        topic_names = " | ".join(json.dumps(name) for name, _ in params_types) or "never"
        return "".join([
            f"// The contract of {json.dumps(self.schema['title'])} ({self.schema['protocol']}), "
            f"generated by drizzle-gateway codegen ts.\n// Do not edit: generate it again when the gateway changes.\n"
            "/* eslint-disable */\n\n",
            _PRELUDE % {"codes": codes},
            "\n// -- schemas ---------------------------------------------------------------\n\n",
            types,
            "// -- topics ----------------------------------------------------------------\n\n",
            f"/** The topic names and patterns the gateway declares. */\nexport type TopicName = {topic_names};\n\n",
            "// -- the API ---------------------------------------------------------------\n\n",
            "".join(api),
            "\n/** The gateway's API over a drizzle.js client: `typed(await Drizzle.connect(url))`. */\n",
            "export function typed(dz: DrizzleLike): Api {\n",
            "  const call = (resource: string, action: string) =>\n",
            "    (data?: unknown, options?: { fields?: readonly string[]; timeout?: number }) =>\n",
            "      dz.call(resource, action, data, options);\n",
            "  const stream = (resource: string, action: string) =>\n",
            "    (data?: unknown, options?: { fields?: readonly string[] }) =>\n",
            "      dz.stream(resource, action, data, options);\n",
            "  const channel = (name: string) => ({\n",
            "    channel: name,\n",
            "    subscribe: (handler: (data: any, meta: EventMeta) => void,\n",
            "                options?: { fields?: readonly string[] }) =>\n",
            "      dz.subscribe(name, handler, options),\n",
            "    publish: (payload: unknown) => dz.publish(name, payload),\n",
            "    presence: (options?: { fields?: readonly string[] }) => dz.presence!(name, options),\n",
            "  });\n",
            "  const api = {\n",
            "".join(runtime),
            "  };\n",
            "  return api as unknown as Api;\n",
            "}\n",
        ])

    def component_types(self) -> str:
        """Both sides of every component the API reaches (and the components they reach)."""
        for resource in self.schema["resources"]:
            for act in resource["actions"]:
                self.type_of(act["input"], "in")
                self.type_of(act["output"], "out")
        for topic in self.schema["topics"]:
            self.type_of(topic["payload"], "out")
            if topic["client_publish"]:
                self.type_of(topic.get("publish") or topic["payload"], "in")
            if topic.get("presence"):
                self.type_of(topic["presence"]["member"], "out")
                if topic["presence"].get("input"):
                    self.type_of(topic["presence"]["input"], "in")
        written: dict[tuple[str, str], str] = {}
        while True:
            todo = [(side, name) for side in ("out", "in") for name in sorted(self.wanted[side])
                    if (side, name) not in written]
            if not todo:
                break
            for side, name in todo:
                written[(side, name)] = self.component(name, side)
        order = [key for key in written if key[0] == "out"] + [key for key in written if key[0] == "in"]
        order = sorted(order, key=lambda key: (list(self.components).index(key[1]), key[0] == "in"))
        return "".join(written[key] for key in order)

    def component(self, name: str, side: str) -> str:
        node = self.components[name]
        type_name = self.names[name] + ("Input" if side == "in" else "")
        label = "what requests carry (the load side)" if side == "in" else "what replies and events carry"
        text = f"/** {name}: {label}. */\n"
        if node.get("type") == "object" and "properties" in node:
            text += f"export interface {type_name} {self.properties(node, side, '', name)}\n"
        else:
            text += f"export type {type_name} = {self.type_of(node, side, '')};\n"
        if side == "out":
            paths = " | ".join(json.dumps(p) for p in self.paths(name)) or "never"
            text += (f"/** The `fields` a selection on {name} may name. */\n"
                     f"export type {self.names[name]}Path = {paths};\n")
        return text + "\n"


def typescript(schema: dict[str, Any]) -> str:
    """The TypeScript module (types and `typed`) of the gateway whose ``__schema__`` document is ``schema``.

    Raises ValueError when the gateway has a resource named ``topics`` (``api.topics`` holds the topics).
    """
    return _Generator(schema).module()
