"""The TypeScript contract: `drizzle-gateway codegen ts`, checked by tsc (strict) and by the wire.

The sample app and the files that must not compile live in tests/contract
(``app/``, ``fail/``); each test copies them next to freshly generated
types and runs the pinned ``tsc`` of tests/contract/node_modules.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import tornado.web
from marshmallow import Schema, ValidationError, fields

import drizzle_gateway
from drizzle_gateway import Gateway, Resource, Topic, action
from drizzle_gateway.contract.typescript import typescript
from drizzle_gateway.wire.codec import encode
from examples.chat.app import make_gateway as chat_gateway
from examples.todo.app import Todos, todo_changed
from examples.todo.app import make_gateway as todo_gateway
from tests.support import described
from tests.support.browser import GatewayProcess, ServerThread, chromium
from tests.support.differential import CASES
from tests.support.differential import make_gateway as every_field_gateway
from tests.support.node_tools import CONTRACT, ROOT, TSC, require, run_node, websocket_flags

COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))
EXPECT = re.compile(r"^// expect: (TS\d+) (.+)$")
DIAGNOSTIC = re.compile(r"^(?P<file>[^(\s]+)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<text>.*)$")


def codegen(*args: str) -> str:
    """Run ``drizzle-gateway codegen ts ARGS`` and return its stdout."""
    return subprocess.run([COMMAND, "codegen", "ts", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True).stdout


def project(tmp_path: Path, todo_ts: str, chat_ts: str) -> Path:
    """A copy of tests/contract (its node_modules linked) with these generated modules."""
    require(TSC)
    for name in ("tsconfig.json", "tsconfig.fail.json", "package.json"):
        shutil.copy(CONTRACT / name, tmp_path / name)
    for folder in ("app", "fail"):
        shutil.copytree(CONTRACT / folder, tmp_path / folder)
    (tmp_path / "node_modules").symlink_to(CONTRACT / "node_modules", target_is_directory=True)
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "todo.ts").write_text(todo_ts)
    (tmp_path / "generated" / "chat.ts").write_text(chat_ts)
    return tmp_path


def tsc(where: Path, *args: str, lib_check: bool = False) -> subprocess.CompletedProcess:
    """The pinned tsc in ``where``; declaration files (drizzle.d.ts, @types/node) are checked only with ``lib_check``.

    `test_sample_app_type_checks_strict` checks them once; the other runs skip
    them, which is most of a run's time.
    """
    return run_node(TSC, "--pretty", "false", *([] if lib_check else ["--skipLibCheck"]), *args, cwd=where)


def tsc_files(where: Path, *files: str) -> subprocess.CompletedProcess:
    """``tsc --noEmit --strict`` on ``files`` (and the generated modules) with the project's settings.

    Without node's types: only the sample app's ``main.ts`` runs on node, and
    parsing them is a third of a run.
    """
    config = {"extends": "./tsconfig.json", "compilerOptions": {"noEmit": True, "types": []},
              "include": [*files, "generated/**/*.ts"]}
    (where / "tsconfig.only.json").write_text(json.dumps(config))
    return tsc(where, "--noEmit", "--strict", "-p", "tsconfig.only.json")


def diagnostics(output: str) -> list[dict]:
    """tsc's errors, each with the lines that continue its message."""
    found: list[dict] = []
    for line in output.splitlines():
        match = DIAGNOSTIC.match(line)
        if match:
            found.append({**match.groupdict(), "text": match["text"]})
        elif found and line.startswith(" "):
            found[-1]["text"] += "\n" + line.strip()
    return found


@pytest.fixture(scope="session")
def generated() -> tuple[str, str]:
    """The modules of both examples, written by the command (from MODULE:ATTR), once per test process."""
    return codegen("examples.todo.app:gateway"), codegen("examples.chat.app:gateway")


@pytest.fixture(scope="session")
def sample_app(tmp_path_factory, generated) -> tuple[Path, subprocess.CompletedProcess]:
    """The sample app's project, compiled once (declaration files checked too), and tsc's outcome.

    The tests that use it share an xdist group, so one process compiles it; for the session, as
    that process may run other modules' tests between them (a module fixture would compile twice).
    """
    where = project(tmp_path_factory.mktemp("sample-app"), *generated)
    return where, tsc(where, "-p", "tsconfig.json", lib_check=True)


def built(sample_app: tuple[Path, subprocess.CompletedProcess]) -> Path:
    """The sample app's project folder, its ``dist`` compiled without an error."""
    where, build = sample_app
    assert build.returncode == 0, build.stdout + build.stderr
    return where


def test_codegen_writes_a_file_with_both_sides_and_the_paths(tmp_path):
    out = tmp_path / "api.ts"
    codegen("examples.todo.app:gateway", "-o", str(out))
    module = out.read_text()
    assert "export interface NewTodoInput {\n  title: string;\n  tags?: Array<string>;\n}" in module
    assert 'export type TodoPath = "id" | "title" | "done" | "tags" | "owner" | "owner.name" | "owner.email";' in module
    assert "export interface Todo {\n  id: number;" in module
    assert '"INVALID_FIELDS"' in module
    assert "todos(): TopicHandle<Todo, TodoPath>;" in module


def test_codegen_from_a_running_gateway_matches_the_module(tmp_path):
    """--url reads __schema__ over the websocket: the same module as from MODULE:ATTR."""
    with GatewayProcess("examples.chat.app:gateway") as server:
        remote = codegen("--url", f"ws://127.0.0.1:{server.port}/ws")
    assert remote == codegen("examples.chat.app:gateway")
    assert ("chat(params: { room: string; }): PresenceTopic<ChatMessage, ChatMessagePath, ChatMember, ChatMemberPath, "
            "ChatMemberInput> & Publishes<ChatMessageInput>;") in remote


def test_codegen_needs_a_target_or_a_url():
    result = subprocess.run([COMMAND, "codegen", "ts"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "drizzle-gateway: error: give either MODULE:ATTR or --url ws://HOST:PORT/PATH " \
                                    "(not both)"


def test_codegen_of_a_gateway_without_resources_or_topics_is_not_an_error():
    with ServerThread(Gateway()) as server:
        module = codegen("--url", server.url("/ws", scheme="ws"))
    assert "export function typed(" in module


def test_codegen_says_when_no_gateway_answers():
    with GatewayProcess("examples.chat.app:gateway") as server:
        port = server.port
    result = subprocess.run([COMMAND, "codegen", "ts", "--url", f"ws://127.0.0.1:{port}/ws"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"drizzle-gateway: error: could not read __schema__ from ws://127.0.0.1:{port}/ws")


def test_the_same_schema_gives_the_same_module():
    assert typescript(json.loads(encode(todo_gateway().schema()))) == typescript(
        json.loads(encode(todo_gateway().schema())))


@pytest.mark.timeout(120)
@pytest.mark.xdist_group("sample-app")
def test_sample_app_type_checks_strict(sample_app):
    where, result = sample_app
    assert json.loads((where / "tsconfig.json").read_text())["compilerOptions"]["strict"] is True
    assert (result.returncode, diagnostics(result.stdout)) == (0, []), result.stdout + result.stderr
    assert (where / "dist" / "app" / "main.js").is_file() and (where / "dist" / "app" / "browser.js").is_file()


@pytest.mark.timeout(120)
def test_files_that_misuse_the_types_fail_with_the_expected_diagnostic(tmp_path, generated):
    """Each fail/*.ts names the error it must cause on its first line; tsc must report exactly that one."""
    where = project(tmp_path, *generated)
    result = tsc(where, "--noEmit", "--strict", "-p", "tsconfig.fail.json")
    found = diagnostics(result.stdout)
    files = sorted((where / "fail").glob("*.ts"))
    assert len(files) >= 5
    report = {}
    for path in files:
        expect = EXPECT.match(path.read_text().splitlines()[0])
        assert expect, f"{path.name} has no '// expect: TSnnnn text' first line"
        mine = [d for d in found if Path(d["file"]).name == path.name]
        report[path.name] = [(d["code"], expect[2] in d["text"]) for d in mine]
        assert report[path.name] == [(expect[1], True)], (path.name, mine)
    assert result.returncode != 0


@pytest.mark.timeout(120)
def test_a_misuse_compiles_once_the_types_are_loosened(tmp_path, generated):
    """The failures above come from the generated types: with `fields` paths as plain strings they vanish."""
    todo_ts, chat_ts = generated
    loose = re.sub(r"export type TodoPath = [^;]+;", "export type TodoPath = string;", todo_ts)
    where = project(tmp_path, loose, chat_ts)
    result = tsc_files(where, "fail/unknown_selected_field.ts")
    assert result.returncode == 0, result.stdout


@pytest.mark.timeout(120)
def test_presence_misuses_compile_once_the_member_types_are_loosened(tmp_path, generated):
    """The presence failures come from the generated member types: loosened, they vanish."""
    todo_ts, chat_ts = generated
    assert "PresenceTopic<ChatMessage, ChatMessagePath, ChatMember, ChatMemberPath, ChatMemberInput>" in chat_ts
    loose = re.sub(r"export type ChatMemberPath = [^;]+;", "export type ChatMemberPath = string;", chat_ts)
    loose = re.sub(r"export interface ChatMember(Input)? \{",
                   r"export interface ChatMember\1 {\n  [more: string]: unknown;", loose)
    loose = loose.replace("  name: string;\n}", "  name?: string;\n}")
    where = project(tmp_path, todo_ts, loose)
    result = tsc_files(where, "fail/unknown_member_field.ts", "fail/wrong_presence_entry.ts",
                       "fail/member_field_not_selected.ts")
    assert result.returncode == 0, result.stdout


def _type_of(seen: dict) -> str:
    """The TypeScript type the generated module gives a reply or an event the sample app got."""
    section, name = seen["member"]
    if seen.get("stream"):
        full = f'ReturnType<{seen["module"]}.Api["{section}"]["{name}"]> extends AsyncIterable<infer T> ? T : never'
        full = f"({full})"
    elif section == "topics":
        handler = f'Parameters<ReturnType<{seen["module"]}.Api["topics"]["{name}"]>["subscribe"]>[0]'
        full = f"Parameters<{handler}>[0]"
    else:
        full = f'Awaited<ReturnType<{seen["module"]}.Api["{section}"]["{name}"]>>'
    if seen["fields"] is None:
        return full
    return f"{seen['module']}.Select<{full}, {' | '.join(json.dumps(f) for f in seen['fields'])}>"


def check_module(replies: list[dict]) -> str:
    """A TypeScript module assigning every reply, as a literal, to the type the generated module gives it."""
    lines = ['import type * as todo from "./generated/todo.js";', 'import type * as chat from "./generated/chat.js";']
    for n, seen in enumerate(replies):
        lines.append(f"export const reply{n}: {_type_of(seen)} = {json.dumps(seen['value'])};")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(180)
@pytest.mark.xdist_group("sample-app")
def test_the_sample_app_runs_against_live_gateways_and_the_wire_fits_the_types(tmp_path, generated, sample_app):
    """Every action of both examples, from node through typed(dz); each reply type-checks as its TS type."""
    app = built(sample_app)
    replies_file = tmp_path / "replies.json"
    with GatewayProcess("examples.todo.app:gateway") as todo, GatewayProcess("examples.chat.app:gateway") as chat:
        run = run_node(*websocket_flags(), "dist/app/main.js", f"ws://127.0.0.1:{todo.port}/ws",
                       f"ws://127.0.0.1:{chat.port}/ws", replies_file, cwd=app)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok: 11 replies and events")
    replies = json.loads(replies_file.read_text())
    called = {(r["module"], *r["member"]) for r in replies}
    for gateway, module in ((todo_gateway(), "todo"), (chat_gateway(), "chat")):
        for resource in gateway.schema()["resources"]:
            for act in resource["actions"]:
                assert (module, resource["name"], act["name"]) in called
    # the check bites: a reply with a wrong type, an extra key or a missing one does not fit
    tampered = json.loads(json.dumps(replies))
    tampered[0]["value"]["id"] = "1"
    tampered[2]["value"]["title"] = "not selected"
    tampered[6]["value"]["done"] = True  # a stream's item carries only its selection
    del tampered[7]["value"]["author"]
    where = project(tmp_path, *generated)
    (where / "check.ts").write_text(check_module(replies))
    (where / "tampered.ts").write_text(check_module(tampered))
    found = diagnostics(tsc_files(where, "check.ts", "tampered.ts").stdout)
    assert [(d["file"], d["line"], d["code"]) for d in found] == [
        ("tampered.ts", "3", "TS2322"), ("tampered.ts", "5", "TS2353"), ("tampered.ts", "9", "TS2353"),
        ("tampered.ts", "10", "TS2741")], found


def test_every_marshmallow_field_has_a_type():
    """Both sides of the differential suite's schemas: load-only and dump-only fields on their side only."""
    module = typescript(json.loads(encode(every_field_gateway().schema())))
    assert "export interface Case_tuple {\n  value: [string, number];\n  otherKey: number;\n}" in module
    assert "export interface Case_float_allow_nan {\n  value: number | null;" in module
    assert 'export interface Case_enum_by_name {\n  value: "RED" | "GREEN";' in module
    assert "export interface Case_dict {\n  value: { [key: string]: number };" in module
    assert "export interface Hooked {\n  name: string;\n  Total: number;\n  tags: Array<string>;\n}" in module
    assert "export interface HookedInput {\n  name: string;\n  Total?: number | string;\n  secret?: string;\n" in module
    assert '"value.kids.kids.label"' in module  # a self-referencing schema, three levels down


@pytest.mark.timeout(180)
def test_modules_of_every_field_and_realworld_gateways_compile(tmp_path, generated):
    from tests.support.realworld import make_gateway as realworld_gateway

    where = project(tmp_path, *generated)
    for name, make in (("every", every_field_gateway), ("realworld", realworld_gateway)):
        (where / "generated" / f"{name}.ts").write_text(typescript(json.loads(encode(make().schema()))))
    result = tsc_files(where, "generated/every.ts", "generated/realworld.ts")
    assert result.returncode == 0, result.stdout


def test_drizzle_js_is_a_package_with_declarations_of_every_export():
    """drizzle_gateway/static installs from the repository path: package.json, drizzle.js, drizzle.d.ts."""
    static = ROOT / "drizzle_gateway" / "static"
    package = json.loads((static / "package.json").read_text())
    assert package["type"] == "module"
    assert package["exports"]["."] == {"types": "./drizzle.d.ts", "default": "./drizzle.js"}
    assert package["version"] == drizzle_gateway.__version__
    listed = run_node("--input-type=module", "-e",
                      'const m = await import("./drizzle.js"); console.log(JSON.stringify(Object.keys(m)))',
                      cwd=static)
    assert listed.returncode == 0, listed.stderr
    declarations = (static / "drizzle.d.ts").read_text()
    declared = set(re.findall(r"^export (?:declare )?(?:const|function|class) (\w+)", declarations, re.M))
    declared |= {"default"} if "export default Drizzle;" in declarations else set()
    assert set(json.loads(listed.stdout)) <= declared


README_ERROR = re.compile(r"^// (?P<code>.+?);  // error (?P<ts>TS\d+): (?P<message>.+)$")


@pytest.mark.timeout(120)
def test_the_readme_typescript_compiles_and_its_commented_lines_fail_as_it_says(tmp_path, generated):
    where = project(tmp_path, *generated)
    block = re.findall(r"```ts\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[0]
    (where / "app" / "api.ts").write_text(generated[0])
    lines = block.splitlines()
    claims = [(n, README_ERROR.match(line)) for n, line in enumerate(lines) if README_ERROR.match(line)]
    assert len(claims) == 3
    # the block as written, and one variant per commented line with that line put back: one tsc run for all
    (where / "app" / "readme.ts").write_text(block)
    for k, (n, claim) in enumerate(claims):
        variant = [*lines[:n], claim["code"] + ";", *lines[n + 1:]]
        (where / "app" / f"readme_{k}.ts").write_text("\n".join(variant) + "\n")
    result = tsc_files(where, "app/readme*.ts", "app/api.ts")
    found = diagnostics(result.stdout)
    assert [d for d in found if d["file"] == "app/readme.ts"] == [], result.stdout
    for k, (_, claim) in enumerate(claims):
        mine = [(d["code"], d["text"].splitlines()[0]) for d in found if d["file"] == f"app/readme_{k}.ts"]
        assert mine == [(claim["ts"], claim["message"])]
    assert len(found) == len(claims), result.stdout


BROWSER_PAGE = """<!doctype html><html><head><link rel="icon" href="data:,"><title>typed sample</title>
<script type="importmap">{"imports": {"drizzle-gateway-client": "/drizzle.js"}}</script>
<script type="module" src="/sample/app/browser.js"></script></head><body></body></html>"""


@pytest.mark.timeout(180)
@pytest.mark.xdist_group("sample-app")
def test_the_sample_app_runs_in_chromium_against_the_chat_example(sample_app):
    """The same generated module, compiled, in a real page: typed calls and a typed subscription."""
    where = built(sample_app)

    class Page(tornado.web.RequestHandler):
        def get(self) -> None:
            self.finish(BROWSER_PAGE)

    gateway = chat_gateway()
    gateway.extra_routes += [(r"/sample/page", Page, {}),
                             (r"/sample/(.*)", tornado.web.StaticFileHandler, {"path": str(where / "dist")})]
    with chromium() as browser, ServerThread(gateway) as server:
        page = browser.new_page()
        try:
            page.goto(server.url("/sample/page"))
            page.wait_for_function("document.body.dataset.result || document.body.dataset.error", timeout=30000)
            assert page.evaluate("document.body.dataset.error") is None
            result = json.loads(page.evaluate("document.body.dataset.result"))
        finally:
            page.close()
    assert result["said"]["author"] == "ada"
    assert result["sentAt"] == result["said"]["sent_at"]
    assert result["event"] == {"author": "ada", "text": "from a browser"}
    assert result["texts"] == ["from a browser"]


def test_topics_whose_short_names_clash_get_longer_ones():
    class Note(Schema):
        text = fields.Str()

    gateway = Gateway(topics=[Topic("chat", Note), Topic("chat.{room}", Note)])
    module = typescript(json.loads(encode(gateway.schema())))
    assert "    chat(): TopicHandle<Note, NotePath>;" in module
    assert "    chat_room(params: { room: string; }): TopicHandle<Note, NotePath>;" in module
    assert 'chat_room: (params: { room: string; }) => channel("chat." + params["room"]),' in module


def test_a_resource_named_topics_is_refused_with_a_reason():
    class Topics(Resource):
        name = "topics"

        @action()
        def list(self, data):
            return []

    with pytest.raises(ValueError, match="a resource named 'topics' would hide api.topics"):
        typescript(json.loads(encode(Gateway([Topics]).schema())))


def _token_gateway() -> Gateway:
    return Gateway([Todos], [todo_changed], authenticate=lambda credentials: (
        "ada" if credentials.token == "s3cret" else None))


def test_codegen_from_a_gateway_that_authenticates_needs_its_token(tmp_path):
    """Without --token a gateway that hides its contract is an error, and no file is written; with it, everything."""
    out = tmp_path / "api.ts"
    with ServerThread(_token_gateway()) as server:
        url = server.url("/ws", scheme="ws")
        anonymous = subprocess.run([COMMAND, "codegen", "ts", "--url", url, "-o", str(out)], cwd=ROOT,
                                   capture_output=True, text=True, timeout=60)
        authenticated = codegen("--url", url, "--token", "s3cret")
        refused = subprocess.run([COMMAND, "codegen", "ts", "--url", url, "--token", "wrong"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
    assert (anonymous.returncode, anonymous.stdout) == (1, "")
    assert anonymous.stderr == (f"drizzle-gateway: error: the gateway at {url} authenticates and shows its "
                                "contract only after: give --token TOKEN\n")
    assert not out.exists()
    assert "create<const F extends readonly (TodoPath)[] = []>(data: NewTodoInput" in authenticated
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"drizzle-gateway: error: could not read __schema__ from {url}: ")


@pytest.fixture
def gateway() -> Gateway:
    """The differential suite's gateway (every marshmallow field), served by conftest's app."""
    return every_field_gateway()


@pytest.mark.gen_test(timeout=150)
@pytest.mark.timeout(160)
async def test_replies_of_every_marshmallow_field_fit_the_generated_types(gateway, connect, tmp_path):
    """Each field type's samples, dumped by a live gateway, type-check as the generated output type."""
    client = await connect()
    checks = []
    for case in CASES:
        name = f"case_{case.id}"
        for value in case.samples:
            obj = {"value": value, "other": 7}
            schema = gateway.state["schemas"][name]()
            try:  # objects that fit the schema: marshmallow reads their dump back and dumps that the same
                dumped = schema.dump(obj)
                if encode(schema.dump(schema.load(dumped))) != encode(dumped):
                    continue
            except (ValidationError, ValueError, TypeError):
                continue
            gateway.state["objects"][name] = obj
            checks.append((name, None, await client.call(name, "dump")))
            checks.append((name, "value", await client.call(name, "dump", fields=["value"])))
    assert len({name for name, _, _ in checks}) >= 45, {f"case_{c.id}" for c in CASES} - {n for n, _, _ in checks}
    where = project(tmp_path, *[typescript(json.loads(encode(g.schema()))) for g in (todo_gateway(), chat_gateway())])
    (where / "generated" / "every.ts").write_text(typescript(json.loads(encode(gateway.schema()))))
    lines = ['import type * as every from "./generated/every.js";']
    for n, (name, selected, reply) in enumerate(checks):
        full = f'Awaited<ReturnType<every.Api["{name}"]["dump"]>>'
        kind = f'every.Select<{full}, "{selected}">' if selected else full
        literal = encode(reply).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")  # TS counts them as lines
        lines.append(f"export const reply{n}: {kind} = {literal};")
    (where / "check.ts").write_text("\n".join(lines) + "\n")
    result = tsc_files(where, "check.ts")
    failed = {(checks[int(d["line"]) - 2][0], d["code"], d["text"].split(" in type ")[0])
              for d in diagnostics(result.stdout)}
    # the one sample that breaks the types' assumption (an object has what its schema declares): an Inner without n
    assert failed == {("case_nested_many", "TS2741", "Property 'N' is missing")}, result.stdout[:3000]


def test_what_marshmallow_takes_and_sends_has_its_type():
    """A OneOfSchema is a union of its type schemas; Decimal, null dumps and custom fields typed as on the wire."""
    module = typescript(json.loads(encode(described.make_gateway().schema())))
    assert "export type Pet = (Pet_cat) | (Pet_dog);" in module
    assert "export type PetInput = (Pet_catInput) | (Pet_dogInput);" in module
    assert 'export interface Pet_cat {\n  name: string;\n  lives: number;\n  kind: "cat";\n}' in module
    assert 'export interface Pet_dogInput {\n  bark: string;\n  weight?: number | string;\n  kind: "dog";\n}' in module
    assert "    adopt<const F extends readonly (PetPath)[] = []>(data: PetInput, " in module
    assert "export interface Owner {\n  name: string;\n  pet: Pet;\n  pets: Array<Pet>;\n  more: Array<Pet>;\n" \
           "  maybe: (Pet) | (null);\n}" in module
    assert "pets(): PublishableTopic<Pet, PetPath, PetInput>;" in module
    assert "accounts(): PublishableTopic<Account, AccountPath, AccountInput>;" in module
    assert "export interface PricedInput {\n  price: number | string;\n  text?: number | string;\n" \
           "  exact?: number | string | null;\n  special?: number | string;\n  ratio?: number;\n" \
           "  count?: number;\n}" in module
    assert "export interface Priced {\n  price: number;\n  text: string;\n  exact: number | null;\n" \
           "  special: number | null;\n  ratio: number | null;\n  count: string;\n}" in module
    assert "export interface Nullable {\n  id: number;\n  note: string | null;\n  seen: string | null;\n" \
           "  label: string | null;\n  parent: (Cat) | (null);\n  tags: Array<string> | null;\n" \
           "  stamp: string | null;\n  version: 2;\n}" in module
    assert "export interface NullableInput {\n  id: number;\n  label?: string;\n  parent?: CatInput;\n" \
           "  tags?: Array<string>;\n}" in module
    assert "export interface Wallet {\n  balance: string;\n  spare: string | null;\n  share: number;\n" \
           "  /** non-negative */\n  code: string;\n  plain: unknown;\n}" in module


@pytest.mark.timeout(120)
def test_what_marshmallow_takes_and_sends_fits_the_generated_types(tmp_path, generated):
    """Real dumps fit the output types and payloads marshmallow loads fit the input types; wrong ones do not."""
    where = project(tmp_path, *generated)
    (where / "generated" / "described.ts").write_text(typescript(json.loads(encode(described.make_gateway().schema()))))
    owner = described.Owner().dump(described.OWNER)
    fitting = [("Pet", described.Pet().dump(described.REX)), ("Owner", owner),
               ("Account", described.Account().dump({"name": "ada", "created": dt.datetime(2024, 5, 17),
                                                     "owner": described.OWNER})),
               ("Nullable", described.Nullable().dump({"id": 1, "seen": None, "stamp": None})),
               ("Priced", described.Priced().dump({"price": Decimal("1.10"), "text": Decimal("2"), "exact": None,
                                                   "special": Decimal("NaN"), "ratio": 0.5, "count": 3})),
               ("PetInput", {"kind": "dog", "bark": "woof", "weight": "12.50"}),
               ("AccountInput", {"name": "ada", "password": "s3cret"}),
               ("PricedInput", {"price": "19.99", "exact": None})]
    wrong = [("Pet", {"kind": "cow", "name": "Tom"}), ("PetInput", {"kind": "cat", "bark": "woof"}),
             ("Priced", {"price": "1.10"}), ("AccountInput", {"name": "ada"})]
    lines = ['import type * as described from "./generated/described.js";']
    for n, (name, value) in enumerate(fitting + wrong):
        lines.append(f"export const value{n}: described.{name} = {encode(value)};")
    (where / "check.ts").write_text("\n".join(lines) + "\n")
    found = diagnostics(tsc_files(where, "check.ts").stdout)
    assert sorted({int(d["line"]) - 2 for d in found}) == list(range(len(fitting), len(fitting) + len(wrong))), \
        [(d["line"], d["text"]) for d in found]


@pytest.mark.timeout(180)
def test_the_readme_typescript_runs_on_node_with_the_flag_it_names(tmp_path, generated):
    """Compiled as written (the port aside) and run with the README's node command against the todo example."""
    text = (ROOT / "README.md").read_text()
    assert "run it there with `node --experimental-websocket main.js`" in text
    block = re.findall(r"```ts\n(.*?)```", text, re.S)[0]
    where = project(tmp_path, *generated)
    (where / "app" / "api.ts").write_text(generated[0])
    config = {"extends": "./tsconfig.json", "compilerOptions": {"types": []}, "include": ["app/main_readme.ts",
                                                                                         "app/api.ts"]}
    (where / "tsconfig.readme.json").write_text(json.dumps(config))
    with GatewayProcess("examples.todo.app:gateway") as todo:
        (where / "app" / "main_readme.ts").write_text(block.replace("127.0.0.1:8889", f"127.0.0.1:{todo.port}"))
        build = tsc(where, "-p", "tsconfig.readme.json")
        assert build.returncode == 0, build.stdout + build.stderr
        ran = run_node("--experimental-websocket", "dist/app/main_readme.js", cwd=where, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    said = re.search(r'console\.log\(todo\.id, owner\);  // (.+) \(after "(.+)"\)', block).groups()
    assert ran.stdout.splitlines() == [said[1], said[0]]
